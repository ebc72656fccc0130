//! Seed 000's workspace/document API over HTTP, through the same commit-then-broadcast path.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn healthz_answers_200() {
    let s = TestServer::start().await;
    let (status, body) = call(Method::GET, &s.http("/healthz"), None, None).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
}

#[tokio::test]
async fn admin_creates_lists_and_deletes_workspaces() {
    let s = TestServer::start().await;
    let admin = token("admin");
    let (status, _) = call(Method::POST, &s.http("/v1/workspaces"), Some(&admin), Some(json!({"name": "team-a"}))).await;
    assert_eq!(status, 201);
    let (status, body) = call(Method::POST, &s.http("/v1/workspaces"), Some(&admin), Some(json!({"name": "team-a"}))).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["workspace"], "team-a");
    let (status, body) = call(Method::POST, &s.http("/v1/workspaces"), Some(&admin), Some(json!({"name": "bad name!"}))).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = call(Method::POST, &s.http("/v1/workspaces"), Some(&token("write")), Some(json!({"name": "x"}))).await;
    assert_eq!(status, 403, "creating needs admin");

    let (_, list) = get_json(&s.http("/v1/workspaces"), &admin).await;
    let names: Vec<&str> = list["workspaces"].as_array().unwrap().iter().map(|w| w["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["team-a"]);

    // Deleting disconnects its clients and removes its data.
    let mut c = connect(&s.ws_url("team-a", ""), &token("write")).await;
    c.recv().await;
    c.op("k", json!(1)).await;
    c.recv().await;
    let (status, _) = call(Method::DELETE, &s.http("/v1/workspaces/team-a"), Some(&token("write")), None).await;
    assert_eq!(status, 403, "deleting needs admin");
    let (status, _) = call(Method::DELETE, &s.http("/v1/workspaces/team-a"), Some(&admin), None).await;
    assert_eq!(status, 204);
    assert_eq!(c.close_code().await, Some(4004));
    let (status, body) = get_json(&s.http("/v1/workspaces/team-a"), &admin).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], 404);
    let (status, _) = call(Method::DELETE, &s.http("/v1/workspaces/team-a"), Some(&admin), None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn key_put_get_delete_go_through_commit_and_broadcast() {
    let s = TestServer::start().await;
    let mut watcher = connect(&s.ws_url("w", "protocol=1"), &token("read")).await;
    watcher.recv().await;
    let url = s.http("/v1/workspaces/w/keys/todo%2F1");

    let (status, put) = call(Method::PUT, &url, Some(&token("write")), Some(json!({"value": {"title": "milk"}}))).await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["applied"], true);
    let echo = watcher.recv().await;
    assert_eq!(echo["type"], "tx");
    assert_eq!(echo["ops"][0]["key"], "todo/1");
    assert_eq!(echo["heads"], put["heads"]);

    let (status, got) = get_json(&url, &token("read")).await;
    assert_eq!(status, 200);
    assert_eq!(got["value"], json!({"title": "milk"}));
    assert_eq!(got["timestamp"], put["timestamp"]);

    // An older timestamp does not overwrite, and says so.
    let (_, stale) = call(Method::PUT, &url, Some(&token("write")), Some(json!({"value": "old", "timestamp": 1}))).await;
    assert_eq!(stale["applied"], false);

    let (status, _) = call(Method::PUT, &url, Some(&token("read")), Some(json!({"value": 1}))).await;
    assert_eq!(status, 403);
    let (status, body) = call(Method::PUT, &url, Some(&token("write")), Some(json!({"nope": 1}))).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["key"], "todo/1");

    let (status, del) = call(Method::DELETE, &url, Some(&token("write")), None).await;
    assert_eq!(status, 200);
    assert_eq!(del["applied"], true);
    let echo = watcher.recv().await;
    assert_eq!(echo["ops"][0]["delete"], true);
    let (status, body) = get_json(&url, &token("read")).await;
    assert_eq!(status, 404);
    assert_eq!((body["error"]["workspace"].as_str(), body["error"]["key"].as_str()), (Some("w"), Some("todo/1")));
}

#[tokio::test]
async fn history_lists_changes_and_returns_the_document_at_given_heads() {
    let s = TestServer::start().await;
    let mut c = connect(&s.ws_url("w", "protocol=1"), &token("write")).await;
    c.recv().await;
    c.tx("c", "one", json!([{"key": "a", "value": 1}, {"key": "b", "value": 1}])).await;
    let first = c.recv_type("ack").await["heads"].clone();
    c.tx("c", "two", json!([{"key": "b", "value": 2}])).await;
    c.recv_type("ack").await;

    let (status, h) = get_json(&s.http("/v1/history/w"), &token("read")).await;
    assert_eq!(status, 200);
    let changes = h["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0]["keys"], json!(["a", "b"]));
    assert_eq!(changes[0]["tx"], "one");
    assert_eq!(changes[1]["keys"], json!(["b"]));
    assert_eq!(changes[1]["deps"], json!([changes[0]["hash"]]));
    assert!(changes[1]["time"].as_i64().unwrap() > 1_600_000_000_000, "Unix milliseconds");

    let at = first[0].as_str().unwrap();
    let (status, old) = get_json(&s.http(&format!("/v1/history/w?at={at}")), &token("read")).await;
    assert_eq!(status, 200);
    assert_eq!(old["data"], json!({"a": 1, "b": 1}));
    let (status, body) = get_json(&s.http(&format!("/v1/history/w?at={}", "cd".repeat(32))), &token("read")).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = get_json(&s.http("/v1/history/w?at=zz"), &token("read")).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn without_auto_create_unknown_workspaces_are_404_before_the_upgrade() {
    let s = TestServer::start_with(|c| c.auto_create = false).await;
    assert_eq!(try_connect(&s.ws_url("nope", ""), Some(&token("read"))).await.err(), Some(404));
    let (status, _) = call(Method::POST, &s.http("/v1/workspaces"), Some(&token("admin")), Some(json!({"name": "yes"}))).await;
    assert_eq!(status, 201);
    let mut c = connect(&s.ws_url("yes", ""), &token("read")).await;
    assert_eq!(c.recv().await["type"], "init");
}
