//! The provider settings: how tokens that are not verified here are verified (introspection or
//! Google's token information), and which claims carry permissions.

use std::time::Duration;

use super::{Args, ClientAuthArg, IntrospectArg, IntrospectionAudienceArg, Problems, non_empty};
use crate::auth::fetch::FetchUrl;
use crate::auth::policy::ClientIdAudience;
use crate::auth::remote::{
    ClientAuthMethod, ClientSecret, IntrospectedAudience, IntrospectionSettings,
    RemoteVerification, TokenInfoSettings,
};

impl Args {
    /// Introspection (`OAUTH_CLIENT_ID` set) or Google's token information
    /// (`OAUTH_GOOGLE_CLIENT_IDS` set), never both.
    pub(super) fn remote_verification(
        &self,
        problems: &mut Problems,
    ) -> Option<RemoteVerification> {
        let cache_for = Duration::from_secs(self.introspection_cache_secs);
        let google: Vec<&str> = self
            .google_client_ids
            .iter()
            .map(|id| id.trim())
            .filter(|id| !id.is_empty())
            .collect();
        let client_id = non_empty(self.client_id.as_deref().map(str::trim));
        let introspection_url = non_empty(self.introspection_url.as_deref());
        if !google.is_empty() {
            if client_id.is_some() || introspection_url.is_some() {
                problems.add(
                    "OAUTH_GOOGLE_CLIENT_IDS",
                    "Google tokens are verified by Google's token information, not by introspection: unset OAUTH_CLIENT_ID and OAUTH_INTROSPECTION_URL",
                );
                return None;
            }
            let endpoint =
                problems.check("OAUTH_TOKENINFO_URL", FetchUrl::parse(&self.tokeninfo_url));
            let client_ids =
                problems.check("OAUTH_GOOGLE_CLIENT_IDS", ClientIdAudience::new(google));
            return Some(RemoteVerification::TokenInfo(TokenInfoSettings {
                endpoint: endpoint?,
                client_ids: client_ids?,
                cache_for,
            }));
        }
        let Some(client_id) = client_id else {
            if introspection_url.is_some() {
                problems.add(
                    "OAUTH_CLIENT_ID",
                    "required with OAUTH_INTROSPECTION_URL: introspection needs this server's client credentials",
                );
            }
            return None;
        };
        let Some(secret) = non_empty(self.client_secret.as_deref()) else {
            problems.add(
                "OAUTH_CLIENT_SECRET",
                "required with OAUTH_CLIENT_ID: introspection needs this server's client secret",
            );
            return None;
        };
        let endpoint = match introspection_url {
            Some(url) => Some(problems.check("OAUTH_INTROSPECTION_URL", FetchUrl::parse(url))?),
            None => None,
        };
        Some(RemoteVerification::Introspection(IntrospectionSettings {
            endpoint,
            client_id: client_id.to_owned(),
            client_secret: ClientSecret::new(secret),
            client_auth: match self.client_auth {
                ClientAuthArg::Basic => ClientAuthMethod::Basic,
                ClientAuthArg::Post => ClientAuthMethod::Post,
            },
            every_token: self.introspect == IntrospectArg::All,
            cache_for,
            audience: match self.introspection_audience {
                IntrospectionAudienceArg::Required => IntrospectedAudience::Required,
                IntrospectionAudienceArg::WhenPresent => IntrospectedAudience::CheckedWhenPresent,
            },
        }))
    }
}
