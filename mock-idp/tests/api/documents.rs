//! Client ID metadata documents are fetched with care: never from private, link-local or other
//! non-global addresses (checked after name resolution, so a name cannot smuggle one in), from
//! loopback only when allowed, never again soon after a failure, a few at a time, and the caller
//! learns only "unknown client", never why, with no CORS on `/authorize`: the fetcher is no port
//! scanner. Only loopback is ever connected to here; the other targets must be refused before
//! any request, which the IdP's fetch counter proves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mock_idp::MockIdp;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::harness::{builder, http};

const REDIRECT: &str = "http://127.0.0.1:7777/callback";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// What the document host answers.
#[derive(Clone)]
enum Answer {
    /// This status and body (`{url}` in the body becomes the requested URL).
    With(u16, &'static str),
    /// Nothing: the connection stays open, unanswered.
    Hang,
}

/// A plain HTTP listener on loopback that counts the connections it accepts.
struct DocumentHost {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl DocumentHost {
    async fn start(answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, addr, answer.clone()));
            }
        });
        Self {
            addr,
            connections,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for DocumentHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, addr: SocketAddr, answer: Answer) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let (status, body) = match answer {
        Answer::Hang => return std::future::pending().await,
        Answer::With(status, body) => (status, body),
    };
    let path = String::from_utf8_lossy(&head)
        .split(' ')
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    let body = body.replace("{url}", &format!("http://{addr}{path}"));
    let response = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
}

/// A valid public-client document whose `client_id` is its own URL.
const GOOD_DOCUMENT: &str = r#"{"client_id": "{url}", "client_name": "doc client", "redirect_uris": ["http://127.0.0.1:7777/callback"], "token_endpoint_auth_method": "none"}"#;

fn authorize_url(idp: &MockIdp, client_id: &str) -> String {
    let mut url = url::Url::parse(&idp.issuer().authorization_endpoint()).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("state", "s")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    url.to_string()
}

/// `GET /authorize` for `client_id`, as a page on another origin would send it: status, whether
/// the answer allows that page to read it (CORS), and the body.
async fn authorize(idp: &MockIdp, client_id: &str) -> (StatusCode, bool, String) {
    let response = http()
        .get(authorize_url(idp, client_id))
        .header("origin", "https://scanner.example")
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    let readable = response
        .headers()
        .contains_key("access-control-allow-origin");
    (response.status(), readable, response.text().await.unwrap())
}

/// `POST /token` naming `client_id` (a public client): status and body.
async fn token(idp: &MockIdp, client_id: &str) -> (StatusCode, Value) {
    let response = http()
        .post(idp.issuer().token_endpoint())
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", "x"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &"v".repeat(43)),
        ])
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

/// Private, link-local (the cloud metadata service), CGNAT, unique-local, unspecified and
/// IPv4-mapped private addresses are refused without a request: the caller sees "unknown client"
/// and the IdP sent nothing.
#[tokio::test]
async fn documents_on_private_and_link_local_addresses_are_refused_without_a_request() {
    let idp = builder().start().await.unwrap();
    for client_id in [
        "https://10.0.0.1/client.json",
        "https://169.254.169.254/latest/meta-data/client.json",
        "https://192.168.1.1/client",
        "https://172.16.5.4/client.json",
        "https://100.64.0.1/client.json",
        "https://0.0.0.0/client.json",
        "https://[fd00::1]/client.json",
        "https://[fe80::1]/client.json",
        "https://[::ffff:10.0.0.1]/client.json",
        "https://[::ffff:a9fe:a9fe]/client.json",
    ] {
        let started = Instant::now();
        let (status, readable, page) = authorize(&idp, client_id).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{client_id}");
        assert!(!readable, "{client_id}: no CORS on /authorize");
        assert!(
            page.contains("The client is unknown"),
            "{client_id}: {page}"
        );
        let (status, body) = token(&idp, client_id).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_client")),
            "{client_id}"
        );
        assert!(started.elapsed() < Duration::from_secs(2), "{client_id}");
    }
    assert_eq!(idp.client_document_fetches(), 0, "no request was sent");
}

/// Loopback is a document host only when allowed (by default: when the IdP itself listens on
/// loopback). When it is not, neither the address nor a name that resolves to it (`localhost`)
/// is connected to, and the same document is used once it is allowed.
#[tokio::test]
async fn loopback_documents_are_fetched_only_when_allowed() {
    let host = DocumentHost::start(Answer::With(200, GOOD_DOCUMENT)).await;
    let strict = builder()
        .loopback_client_documents(false)
        .start()
        .await
        .unwrap();
    let port = host.addr.port();
    for client_id in [
        host.url("/client.json"),
        format!("http://localhost:{port}/client.json"),
        format!("https://localhost:{port}/client.json"),
        format!("https://127.0.0.1:{port}/client.json"),
        format!("https://[::ffff:127.0.0.1]:{port}/client.json"),
    ] {
        let (status, _, page) = authorize(&strict, &client_id).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{client_id}: {page}");
        assert!(
            page.contains("The client is unknown"),
            "{client_id}: {page}"
        );
    }
    assert_eq!(host.connections(), 0, "nothing reached the loopback host");

    let local = builder().auto_login("alice").start().await.unwrap();
    let response = http()
        .get(authorize_url(&local, &host.url("/client.json")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND, "the document is used");
    assert_eq!(host.connections(), 1);
    assert_eq!(local.client_document_fetches(), 1);
}

/// A document that failed is not fetched again for a minute (of the IdP's clock): one request
/// per URL, however often a client or a scanner asks; after the cooldown it is tried again.
#[tokio::test]
async fn a_failed_document_is_not_fetched_again_during_the_cooldown() {
    let host = DocumentHost::start(Answer::With(404, "{}")).await;
    let idp = builder().start().await.unwrap();
    // 59 s of a 60 s cooldown must stay 59 s however slow the machine: the clock stands still.
    idp.clock().set(idp.clock().now());
    let client_id = host.url("/missing.json");
    for attempt in 0..3 {
        let (status, _, _) = authorize(&idp, &client_id).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "attempt {attempt}");
        let (status, _) = token(&idp, &client_id).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    assert_eq!(host.connections(), 1, "one fetch for six requests");
    // A busy machine: real seconds pass. A running clock would now end the cooldown early.
    let real = std::time::Instant::now();
    while real.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    idp.clock().advance(Duration::from_secs(59));
    authorize(&idp, &client_id).await;
    assert_eq!(host.connections(), 1, "still cooling down");
    idp.clock().advance(Duration::from_secs(2));
    authorize(&idp, &client_id).await;
    assert_eq!(host.connections(), 2, "tried again after the cooldown");
}

/// At most four documents are fetched at once; a request beyond that is answered at once with
/// `temporarily_unavailable` (a 503 page at `/authorize`, a 503 JSON error at `/token`) instead
/// of waiting, and fetches nothing.
#[tokio::test]
async fn document_fetches_are_bounded_and_the_excess_is_refused_at_once() {
    let host = DocumentHost::start(Answer::Hang).await;
    let idp = Arc::new(builder().start().await.unwrap());
    let hanging: Vec<JoinHandle<()>> = (0..4)
        .map(|i| {
            let (idp, client_id) = (Arc::clone(&idp), host.url(&format!("/slow-{i}.json")));
            tokio::spawn(async move {
                let _ = http().get(authorize_url(&idp, &client_id)).send().await;
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while host.connections() < 4 {
        assert!(Instant::now() < deadline, "four fetches under way");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let (status, readable, page) = authorize(&idp, &host.url("/fifth.json")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{page}");
    assert!(!readable);
    assert!(page.contains("Try again shortly"), "{page}");
    let (status, body) = token(&idp, &host.url("/sixth.json")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("temporarily_unavailable")
        )
    );
    assert!(started.elapsed() < Duration::from_secs(2), "not queued");
    assert_eq!(host.connections(), 4, "the excess fetched nothing");
    for task in hanging {
        task.abort();
    }
}

/// Whatever went wrong (a closed port, an error status, not JSON, someone else's document, a
/// document too large), the caller gets the same page, which no other origin may read: the
/// fetcher tells a scanner nothing about ports or content.
#[tokio::test]
async fn document_failures_all_look_the_same_to_the_caller() {
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let hosts = [
        DocumentHost::start(Answer::With(500, "{}")).await,
        DocumentHost::start(Answer::With(200, "not json")).await,
        DocumentHost::start(Answer::With(
            200,
            r#"{"client_id": "https://other.example/c.json", "redirect_uris": ["http://127.0.0.1:7777/callback"]}"#,
        ))
        .await,
        DocumentHost::start(Answer::With(
            200,
            r#"{"client_id": "{url}", "redirect_uris": ["http://127.0.0.1:7777/callback"], "token_endpoint_auth_method": "client_secret_basic"}"#,
        ))
        .await,
    ];
    let idp = builder().start().await.unwrap();
    let mut client_ids = vec![format!("http://{closed}/client.json")];
    client_ids.extend(hosts.iter().map(|h| h.url("/client.json")));
    let mut pages = Vec::new();
    for client_id in &client_ids {
        let (status, readable, page) = authorize(&idp, client_id).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{client_id}");
        assert!(!readable, "{client_id}: no CORS on /authorize");
        pages.push(page);
    }
    assert!(
        pages.iter().all(|page| *page == pages[0]),
        "one page for every failure: {pages:#?}"
    );
    assert!(!pages[0].contains("127.0.0.1"), "{}", pages[0]);
    for host in &hosts {
        assert_eq!(host.connections(), 1);
    }
}
