//! Every way a token can be wrong is refused before the upgrade, with the right status.

mod common;

use common::*;
use serde_json::json;

fn b64(bytes: &[u8]) -> String {
    // base64url without padding, by hand: tests must be able to forge headers the signer never would.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn hs256(secret: &[u8], msg: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(msg.as_bytes());
    b64(&mac.finalize().into_bytes())
}

/// A token with an arbitrary header, signed (HMAC-SHA256) with `secret` whatever the header says.
fn forged(header: serde_json::Value, claims: serde_json::Value, secret: Option<&[u8]>) -> String {
    let signing_input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let sig = secret.map(|s| hs256(s, &signing_input)).unwrap_or_default();
    format!("{signing_input}.{sig}")
}

fn valid_claims() -> serde_json::Value {
    json!({"exp": now_secs() + 3600, "scope": "read write"})
}

async fn status(s: &TestServer, ws: &str, token: Option<&str>) -> u16 {
    match try_connect(&s.ws_url(ws, ""), token).await {
        Ok(_) => 101,
        Err(status) => status,
    }
}

#[tokio::test]
async fn the_forging_helper_produces_tokens_the_server_accepts() {
    // Guards the tests below: a refusal must come from what is wrong, not from the helper.
    let s = TestServer::start().await;
    let good = forged(json!({"alg": "HS256", "typ": "JWT"}), valid_claims(), Some(SECRET.as_bytes()));
    assert_eq!(status(&s, "w", Some(&good)).await, 101);
}

#[tokio::test]
async fn missing_token_is_401() {
    let s = TestServer::start().await;
    assert_eq!(status(&s, "w", None).await, 401);
}

#[tokio::test]
async fn bad_signature_is_401() {
    let s = TestServer::start().await;
    let t = forged(json!({"alg": "HS256", "typ": "JWT"}), valid_claims(), Some(b"some-other-secret"));
    assert_eq!(status(&s, "w", Some(&t)).await, 401);
}

#[tokio::test]
async fn alg_none_is_401() {
    let s = TestServer::start().await;
    let t = forged(json!({"alg": "none", "typ": "JWT"}), valid_claims(), None);
    assert_eq!(status(&s, "w", Some(&t)).await, 401);
}

#[tokio::test]
async fn rs256_header_is_401_even_when_hmac_signed_with_the_secret() {
    let s = TestServer::start().await;
    let t = forged(json!({"alg": "RS256", "typ": "JWT"}), valid_claims(), Some(SECRET.as_bytes()));
    assert_eq!(status(&s, "w", Some(&t)).await, 401);
}

#[tokio::test]
async fn expired_token_is_401() {
    let s = TestServer::start().await;
    let t = token_with(json!({"exp": now_secs() - 3600, "scope": "read write"}));
    assert_eq!(status(&s, "w", Some(&t)).await, 401);
}

#[tokio::test]
async fn token_without_exp_is_401() {
    let s = TestServer::start().await;
    let t = token_with(json!({"scope": "read write"}));
    assert_eq!(status(&s, "w", Some(&t)).await, 401);
}

#[tokio::test]
async fn token_limited_to_other_workspaces_is_403() {
    let s = TestServer::start().await;
    let t = token_with(json!({"exp": now_secs() + 60, "scope": "read write", "workspaces": ["a", "b"]}));
    assert_eq!(status(&s, "c", Some(&t)).await, 403);
    assert_eq!(status(&s, "a", Some(&t)).await, 101);
}

#[tokio::test]
async fn token_without_read_scope_is_403() {
    let s = TestServer::start().await;
    let t = token_with(json!({"exp": now_secs() + 60, "scope": "other:thing"}));
    assert_eq!(status(&s, "w", Some(&t)).await, 403);
}

#[tokio::test]
async fn scope_may_be_a_json_array() {
    let s = TestServer::start().await;
    let t = token_with(json!({"exp": now_secs() + 60, "scope": ["read", "write"]}));
    let mut c = connect(&s.ws_url("w", ""), &t).await;
    c.recv().await;
    c.op("k", json!(1)).await;
    assert_eq!(c.recv().await["type"], "op", "array scopes grant write");
}

#[tokio::test]
async fn read_only_session_write_is_refused_with_403_over_the_socket() {
    let s = TestServer::start().await;
    let mut c = connect(&s.ws_url("w", ""), &token("read")).await;
    c.recv().await;
    c.tx("c1", "t1", json!([{"key": "k", "value": 1}])).await;
    let e = c.recv().await;
    assert_eq!((e["type"].as_str(), e["code"].as_u64(), e["id"].as_str()), (Some("error"), Some(403), Some("t1")));
}

#[tokio::test]
async fn http_refusals_are_json_errors() {
    let s = TestServer::start().await;
    let (status, body) = call(reqwest::Method::GET, &s.http("/v1/history/w"), None, None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], 401);
    assert_eq!(body["error"]["workspace"], "w");
    let bad = forged(json!({"alg": "none"}), valid_claims(), None);
    let (status, _) = get_json(&s.http("/v1/history/w"), &bad).await;
    assert_eq!(status, 401);
    let (status, body) = get_json(&s.http("/v1/workspaces"), &token("read write")).await;
    assert_eq!(status, 403, "listing workspaces needs admin");
    assert!(body["error"]["message"].as_str().unwrap().contains("admin"));
}
