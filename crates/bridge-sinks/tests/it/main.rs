//! The HTTP sink against a real local receiver, its signatures checked by the Standard
//! Webhooks reference library (Python `standardwebhooks`).

mod crm;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use bridge_sinks::http::sign::WebhookSecret;
use bridge_sinks::http::{DeliveryError, HttpEndpoint};
use bridge_sinks::outbound::OutboundGuard;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A status to answer with, and an optional `Retry-After`.
type Answer = (u16, Option<&'static str>);

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    answers: Arc<Mutex<Vec<Answer>>>,
}

async fn receiver() -> (SocketAddr, Receiver) {
    let r = Receiver::default();
    let state = r.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move {
                state.got.lock().unwrap().push((headers, body));
                let (status, retry_after) =
                    state.answers.lock().unwrap().pop().unwrap_or((200, None));
                let mut resp = (StatusCode::from_u16(status).unwrap(), "answer").into_response();
                if let Some(ra) = retry_after {
                    resp.headers_mut()
                        .insert("retry-after", HeaderValue::from_static(ra));
                }
                resp
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    (addr, r)
}

/// A receiver and an endpoint pointing at it (allow-listed: it is on loopback).
async fn endpoint() -> (HttpEndpoint, Receiver) {
    let (addr, rx) = receiver().await;
    let guard = OutboundGuard::new(&[format!("127.0.0.1:{}", addr.port())]);
    let ep = HttpEndpoint::new(
        &format!("http://127.0.0.1:{}/hook", addr.port()),
        WebhookSecret::parse(SECRET).unwrap(),
        &guard,
    )
    .await
    .unwrap();
    (ep, rx)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A Python with `standardwebhooks`, or `None` (skip) outside CI.
fn python() -> Option<String> {
    let python = std::env::var("DRIFTBRIDGE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&python)
        .args(["-c", "import standardwebhooks"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{python} cannot import standardwebhooks; under CI=true it must (.ci/run installs it)"
        );
        eprintln!("skipping the reference check: no standardwebhooks");
        return None;
    }
    Some(python)
}

#[tokio::test]
async fn a_delivery_is_signed_so_the_reference_library_verifies_it() {
    let (ep, rx) = endpoint().await;
    let body = br#"{"type":"conversation.pushed","timestamp":"2026-11-21T00:00:00Z","data":{"conversationId":7}}"#;
    assert_eq!(
        ep.deliver("msg_conv7_push1", now(), body).await.unwrap(),
        200
    );
    let (headers, got) = rx.got.lock().unwrap().pop().unwrap();
    assert_eq!(&got[..], &body[..]);
    assert_eq!(headers["webhook-id"], "msg_conv7_push1");
    let sig = headers["webhook-signature"].to_str().unwrap().to_owned();
    let ts = headers["webhook-timestamp"].to_str().unwrap().to_owned();
    // Our own verifier agrees, and rejects a changed body.
    let secret = WebhookSecret::parse(SECRET).unwrap();
    secret
        .verify("msg_conv7_push1", &ts, &sig, body, now())
        .unwrap();
    assert!(
        secret
            .verify("msg_conv7_push1", &ts, &sig, b"{}", now())
            .is_err()
    );
    // So does the independent reference implementation.
    if let Some(py) = python() {
        let script = format!(
            "import sys, json\nfrom standardwebhooks import Webhook\n\
             body = sys.stdin.buffer.read()\n\
             print(json.dumps(Webhook({SECRET:?}).verify(body, {{'webhook-id': {id:?}, 'webhook-timestamp': {ts:?}, 'webhook-signature': {sig:?}}})))",
            id = "msg_conv7_push1",
        );
        let mut child = std::process::Command::new(py)
            .args(["-c", &script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(body).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "the reference library rejected the signature"
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["data"]["conversationId"], 7);
    }
}

#[tokio::test]
async fn answers_are_classified_for_the_queue_and_forbidden_urls_are_refused() {
    let (ep, rx) = endpoint().await;
    // Answers are popped from the end.
    *rx.answers.lock().unwrap() = vec![
        (302, None),
        (400, None),
        (410, None),
        (500, None),
        (429, Some("7")),
    ];
    let d = || ep.deliver("msg_1", now(), b"{}");
    match d().await.unwrap_err() {
        DeliveryError::Retry {
            status: Some(429),
            retry_after,
            ..
        } => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)))
        }
        e => panic!("{e}"),
    }
    assert!(matches!(
        d().await.unwrap_err(),
        DeliveryError::Retry {
            status: Some(500),
            ..
        }
    ));
    assert!(matches!(d().await.unwrap_err(), DeliveryError::Gone));
    assert!(matches!(
        d().await.unwrap_err(),
        DeliveryError::Permanent { status: 400, .. }
    ));
    // A redirect is a failed delivery, not followed.
    assert!(matches!(
        d().await.unwrap_err(),
        DeliveryError::Permanent { status: 302, .. }
    ));
    assert_eq!(rx.got.lock().unwrap().len(), 5);
    // An endpoint on a private address is refused before anything is sent.
    let e = HttpEndpoint::new(
        "http://10.0.0.5/hook",
        WebhookSecret::parse(SECRET).unwrap(),
        &OutboundGuard::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, DeliveryError::Refused(_)), "{e}");
}
