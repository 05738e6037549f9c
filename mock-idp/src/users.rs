//! The people who can sign in at the login page: a username (the `sub` of their tokens), a display
//! name and an email for ID tokens and userinfo, and any extra claims their tokens carry.

use serde::Deserialize;
use serde_json::{Map, Value};

/// A user of the mock IdP. No password: the login page is for demos and tests, and picks a user.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// The login name, and the `sub` of the user's tokens.
    pub username: String,
    /// The display name (`name` claim, with the `profile` scope).
    #[serde(default)]
    pub name: Option<String>,
    /// The email address (`email` claim, with the `email` scope).
    #[serde(default)]
    pub email: Option<String>,
    /// Extra claims put into each of the user's access tokens (`uid`, `groups`, ...).
    #[serde(default)]
    pub claims: Map<String, Value>,
}

impl User {
    /// A user called `username`, with no name, email or extra claims.
    pub fn new(username: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            name: None,
            email: None,
            claims: Map::new(),
        }
    }

    /// Sets the display name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the email address.
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Adds a claim to every access token of this user.
    pub fn claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }

    /// The demo users: Alice and Bob.
    pub fn demo() -> Vec<Self> {
        vec![
            Self::new("alice")
                .name("Alice Example")
                .email("alice@example.com"),
            Self::new("bob")
                .name("Bob Example")
                .email("bob@example.com"),
        ]
    }

    /// The OpenID Connect claims `scopes` release about this user (OIDC Core §5.4).
    pub(crate) fn profile_claims(&self, scopes: &[String]) -> Map<String, Value> {
        let mut claims = Map::new();
        claims.insert("sub".into(), self.username.clone().into());
        if scopes.iter().any(|s| s == "profile") {
            claims.insert(
                "name".into(),
                self.name
                    .clone()
                    .unwrap_or_else(|| self.username.clone())
                    .into(),
            );
            claims.insert("preferred_username".into(), self.username.clone().into());
        }
        if let Some(email) = &self.email
            && scopes.iter().any(|s| s == "email")
        {
            claims.insert("email".into(), email.clone().into());
            claims.insert("email_verified".into(), true.into());
        }
        claims
    }
}

/// Everyone who can sign in.
#[derive(Clone, Debug, Default)]
pub(crate) struct Users {
    users: Vec<User>,
}

impl Users {
    pub(crate) fn new(users: Vec<User>) -> Self {
        Self { users }
    }

    pub(crate) fn all(&self) -> &[User] {
        &self.users
    }

    pub(crate) fn find(&self, username: &str) -> Option<&User> {
        self.users.iter().find(|u| u.username == username)
    }
}
