//! The pages a person sees at the IdP: the login page (pick a user or type a name; no password,
//! no consent screen: this is a mock) and the error page shown when the client cannot be trusted
//! with a redirect (RFC 6749 §4.1.2.1). Every value is HTML-escaped.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::users::User;

/// What the login page shows.
pub(crate) struct LoginPage<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) action: &'a str,
    pub(crate) handle: &'a str,
    pub(crate) client: &'a str,
    pub(crate) scopes: &'a [String],
    /// Where the form's answer is redirected: the page's CSP must allow it.
    pub(crate) redirect_uri: &'a str,
    pub(crate) users: &'a [User],
    pub(crate) problem: Option<&'a str>,
}

impl LoginPage<'_> {
    pub(crate) fn render(&self) -> Response {
        let users: String = self
            .users
            .iter()
            .map(|user| {
                format!(
                    r#"<button type="submit" name="username" value="{username}"><strong>{name}</strong><span>{username}{email}</span></button>"#,
                    username = escape(&user.username),
                    name = escape(user.name.as_deref().unwrap_or(&user.username)),
                    email = user
                        .email
                        .as_deref()
                        .map(|e| format!(" · {}", escape(e)))
                        .unwrap_or_default(),
                )
            })
            .collect();
        let scopes = if self.scopes.is_empty() {
            "no scopes".to_owned()
        } else {
            self.scopes
                .iter()
                .map(|s| format!("<code>{}</code>", escape(s)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let problem = self
            .problem
            .map(|p| format!(r#"<p class="problem">{}</p>"#, escape(p)))
            .unwrap_or_default();
        let body = format!(
            r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · mock-idp</title><style>{STYLE}</style></head>
<body><main>
<h1>Sign in</h1>
<p class="who"><strong>{client}</strong> asks to act for you, with {scopes}.</p>
{problem}
<form method="post" action="{action}">
<input type="hidden" name="handle" value="{handle}">
<div class="users">{users}</div>
<label>or another user name <input name="other" autocomplete="username" placeholder="username"></label>
<button type="submit" class="plain">Sign in as that user</button>
</form>
<p class="issuer">mock-idp · {issuer} · for tests and demos only</p>
</main></body></html>"#,
            client = escape(self.client),
            action = escape(self.action),
            handle = escape(self.handle),
            issuer = escape(self.issuer),
        );
        page(
            StatusCode::OK,
            body,
            redirect_source(self.redirect_uri).as_deref(),
        )
    }
}

/// The CSP source of the client's redirect URI. Browsers apply `form-action` to the redirects
/// that follow a form's submission too (Chromium blocks the sign-in otherwise), so the page
/// allows exactly the client's origin, or its private-use scheme (RFC 8252 §7.1). Built from
/// the parsed URL, so nothing in it can end the directive.
fn redirect_source(redirect_uri: &str) -> Option<String> {
    let url = url::Url::parse(redirect_uri).ok()?;
    match url.scheme() {
        "http" | "https" => Some(url.origin().ascii_serialization()),
        scheme => Some(format!("{scheme}:")),
    }
}

/// An error the IdP cannot send back to the client (unknown client, untrusted redirect URI).
pub(crate) fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} · mock-idp</title><style>{STYLE}</style></head>
<body><main><h1>{title}</h1><p class="problem">{detail}</p>
<p class="issuer">The request cannot be sent back to the application, so it stops here.</p></main></body></html>"#,
        title = escape(title),
        detail = escape(detail),
    );
    page(status, body, None)
}

/// A page with its security headers; `form_target` is a CSP source the page's form may reach
/// besides the IdP itself.
fn page(status: StatusCode, body: String, form_target: Option<&str>) -> Response {
    let mut response = (status, Html(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The page loads nothing, sends its form only to the IdP (and on to the client), and may not
    // be framed (clickjacking).
    let policy = format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'{}; frame-ancestors 'none'",
        form_target.map(|t| format!(" {t}")).unwrap_or_default()
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&policy).unwrap_or_else(|_| {
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            )
        }),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// HTML-escapes text for element content and double-quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;color:#1d2330}\
main{max-width:28rem;margin:4rem auto;background:#fff;border-radius:12px;padding:2rem 2.25rem;\
box-shadow:0 2px 12px rgba(0,0,0,.08)}h1{margin-top:0;font-size:1.5rem}\
.who{line-height:1.5}code{background:#eef0f4;border-radius:4px;padding:0 .3rem}\
.users{display:flex;flex-direction:column;gap:.6rem;margin:1.25rem 0}\
.users button{display:flex;flex-direction:column;align-items:flex-start;text-align:left;\
padding:.8rem 1rem;border:1px solid #d5d9e2;border-radius:8px;background:#fafbfc;cursor:pointer;font:inherit}\
.users button:hover{border-color:#4058d6;background:#f0f3ff}.users span{color:#5b6478;font-size:.9rem}\
label{display:flex;flex-direction:column;gap:.35rem;font-size:.9rem;color:#5b6478}\
input{font:inherit;padding:.55rem .7rem;border:1px solid #d5d9e2;border-radius:6px}\
button.plain{margin-top:.75rem;padding:.6rem 1rem;border:0;border-radius:6px;background:#4058d6;\
color:#fff;font:inherit;cursor:pointer}.problem{color:#b42318;background:#fef3f2;padding:.6rem .8rem;border-radius:6px}\
.issuer{margin-top:2rem;font-size:.8rem;color:#8a93a6}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_values_is_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }
}
