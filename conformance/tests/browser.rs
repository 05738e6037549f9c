#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]
//! The mock IdP's login page in a real browser (headless Chromium through puppeteer-core): the
//! user client example starts with no token and prints the authorization URL; the browser opens
//! it, the page renders, a click on bob signs him in, and the browser follows the redirect back
//! to the example, which calls get_me as bob. The page's Content-Security-Policy must let the
//! form's redirect reach the client (Chromium enforces `form-action` on redirects).
//!
//! Refresh the screenshot in `docs/` with
//! `LOGIN_PAGE_SCREENSHOT=$PWD/docs/login-page.png cargo test -p conformance --test browser`.

use std::time::Duration;

use conformance::TestEnv;
use conformance::examples::RunningExample;
use conformance::real_idp::{browser, report_of, script};
use serde_json::{Value, json};
use url::Url;

const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test]
#[cfg_attr(
    missing_node_modules,
    ignore = "needs Node 22 and its packages: npm ci --prefix conformance/real-idp"
)]
#[cfg_attr(
    missing_chromium,
    ignore = "needs a headless Chromium: apt-get install chromium-headless-shell, or set CHROMIUM"
)]
async fn the_login_page_signs_a_user_in_in_a_real_browser() {
    let (node, chromium) = browser();
    let env = TestEnv::start().await;
    let mut example = RunningExample::start(
        "user_client",
        &["--server-url", &env.endpoint, "--timeout", "60"],
        &[],
    );
    let url = loop {
        let line = example.next_line(DEADLINE).await.expect("a URL to open");
        if line.starts_with("http") {
            break line;
        }
    };
    let mut browser = script(&node, "browser-sign-in.mjs");
    browser.arg(&url).arg("bob").env("CHROMIUM", chromium);
    if let Some(path) = std::env::var_os("LOGIN_PAGE_SCREENSHOT") {
        browser.arg(path);
    }
    let visit = report_of(browser, DEADLINE).await;
    assert_eq!(visit["loginStatus"], 200, "{visit}");
    assert_eq!(visit["loginTitle"], "Sign in · mock-idp", "{visit}");
    assert!(
        visit["landedOn"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{visit}"
    );
    assert!(
        visit["landedText"].as_str().unwrap().contains("Signed in"),
        "{visit}"
    );
    let landed_on = visit["landedOn"].as_str().unwrap();
    assert_eq!(
        of_pages_under_test(visit["console"].as_array().unwrap(), landed_on),
        Vec::<&Value>::new(),
        "no CSP violation or script error: {visit}"
    );

    let (lines, status) = example.finish(DEADLINE).await;
    assert!(status.success(), "{status}: {lines:?}");
    let me: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(me["user_id"], "bob", "{me}");
}

/// The console messages of the pages under test: all but those the example's own page caused once
/// the browser was on it. A full Chromium asks that page's server for `/favicon.ico`, whose answer
/// races the example shutting its callback listener down (`net::ERR_CONNECTION_REFUSED`); the
/// headless shell asks for nothing. A message logged while the login page was shown stays,
/// whatever URL it names (a blocked form submission names the example's), as does one naming none.
fn of_pages_under_test<'a>(console: &'a [Value], landed_on: &str) -> Vec<&'a Value> {
    let example = Url::parse(landed_on).unwrap().origin();
    let on_example = |url: &Value| {
        url.as_str()
            .and_then(|url| Url::parse(url).ok())
            .is_some_and(|url| url.origin() == example)
    };
    console
        .iter()
        .filter(|message| !(on_example(&message["page"]) && on_example(&message["url"])))
        .collect()
}

#[test]
fn only_what_the_examples_own_page_logs_is_not_under_test() {
    let login = "http://127.0.0.1:9400/authorize?client_id=x";
    let landed = "http://127.0.0.1:7000/callback?code=c";
    let message =
        |page: &str, url: &str| json!({"type": "error", "text": "…", "page": page, "url": url});
    let favicon = message(landed, "http://127.0.0.1:7000/favicon.ico");
    let csp = message(login, landed);
    let script = message(login, "http://127.0.0.1:9400/authorize?client_id=x");
    let idp_resource = message(landed, "http://127.0.0.1:9400/style.css");
    let nameless = message(landed, "");
    let console = [
        favicon,
        csp.clone(),
        script.clone(),
        idp_resource.clone(),
        nameless.clone(),
    ];
    assert_eq!(
        of_pages_under_test(&console, landed),
        [&csp, &script, &idp_resource, &nameless]
    );
}
