//! The HTTP API beside the socket: health, workspaces (seed 000), single keys, history.
//! Every error is `{"error":{"code","message","workspace","key"}}`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tandem_core::protocol::Op;

use crate::auth::{AuthError, Grant, Scope};
use crate::workspace::{HistoryReply, Write, WorkspaceError};
use crate::AppState;

#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub workspace: Option<String>,
    pub key: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), workspace: None, key: None }
    }

    pub fn workspace(mut self, workspace: &str) -> Self {
        self.workspace = Some(workspace.to_owned());
        self
    }

    pub fn key(mut self, key: &str) -> Self {
        self.key = Some(key.to_owned());
        self
    }

    pub fn auth(e: AuthError, workspace: Option<&str>) -> Self {
        ApiError { status: e.status(), message: e.to_string(), workspace: workspace.map(str::to_owned), key: None }
    }
}

impl From<WorkspaceError> for ApiError {
    fn from(e: WorkspaceError) -> Self {
        let (workspace, key) = match &e {
            WorkspaceError::BadRequest { workspace, key, .. } => (Some(workspace.clone()), key.clone()),
            WorkspaceError::NotFound { workspace }
            | WorkspaceError::Unavailable { workspace }
            | WorkspaceError::CommitFailed { workspace, .. } => (Some(workspace.clone()), None),
            _ => (None, None),
        };
        ApiError { status: e.status(), message: e.to_string(), workspace, key }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = (
            status,
            Json(json!({"error": {"code": self.status, "message": self.message, "workspace": self.workspace, "key": self.key}})),
        )
            .into_response();
        if self.status == 401 {
            res.headers_mut().insert("www-authenticate", axum::http::HeaderValue::from_static("Bearer"));
        }
        res
    }
}

/// The bearer token from `Authorization: Bearer …`, else from `?token=` (browsers cannot set
/// headers on a WebSocket).
pub fn bearer_token<'a>(headers: &'a HeaderMap, query: &'a HashMap<String, String>) -> Result<&'a str, AuthError> {
    if let Some(h) = headers.get(axum::http::header::AUTHORIZATION) {
        let h = h.to_str().map_err(|_| AuthError::InvalidToken("unreadable Authorization header".into()))?;
        let (scheme, token) = h.split_once(' ').ok_or(AuthError::MissingToken)?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(AuthError::MissingToken);
        }
        return Ok(token.trim());
    }
    query.get("token").map(String::as_str).filter(|t| !t.is_empty()).ok_or(AuthError::MissingToken)
}

/// Workspace names are 1–128 of `[A-Za-z0-9_-]` (they become NATS subject tokens and file keys).
pub fn check_workspace_name(name: &str) -> Result<(), ApiError> {
    if !name.is_empty() && name.len() <= 128 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        Ok(())
    } else {
        Err(ApiError::new(400, "workspace names are 1-128 characters of A-Z, a-z, 0-9, `_` and `-`").workspace(name))
    }
}

/// Reads and deletes of a workspace that is not on disk answer 404 without starting its actor, so
/// probing many names cannot pile up idle actors.
fn require_existing(app: &AppState, ws: &str) -> Result<(), ApiError> {
    match app.store.workspace_exists(ws) {
        Ok(true) => Ok(()),
        Ok(false) => Err(ApiError::new(404, format!("workspace `{ws}` does not exist")).workspace(ws)),
        Err(e) => Err(ApiError::new(500, e.to_string()).workspace(ws)),
    }
}

fn authorize(app: &AppState, headers: &HeaderMap, query: &HashMap<String, String>, workspace: Option<&str>, scope: Scope) -> Result<Grant, ApiError> {
    let grant = bearer_token(headers, query).and_then(|t| app.auth.verify(t)).map_err(|e| ApiError::auth(e, workspace))?;
    match workspace {
        Some(ws) => {
            grant.authorize(ws, scope).map_err(|e| ApiError::auth(e, Some(ws)))?;
            check_workspace_name(ws)?;
        }
        None => grant.require(scope).map_err(|e| ApiError::auth(e, None))?,
    }
    Ok(grant)
}

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn not_found() -> ApiError {
    ApiError::new(404, "no such endpoint")
}

pub async fn list_workspaces(State(app): State<AppState>, Query(q): Query<HashMap<String, String>>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let grant = authorize(&app, &headers, &q, None, Scope::Admin)?;
    let list = app.store.list_workspaces().map_err(|e| ApiError::new(500, e.to_string()))?;
    let items: Vec<Value> = list
        .into_iter()
        .filter(|(name, _)| grant.may_open(name))
        .map(|(name, created)| json!({"name": name, "created": created}))
        .collect();
    Ok(Json(json!({"workspaces": items})))
}

#[derive(Deserialize)]
pub struct CreateWorkspace {
    name: String,
}

pub async fn create_workspace(
    State(app): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Result<Json<CreateWorkspace>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    authorize(&app, &headers, &q, None, Scope::Admin)?;
    let Json(body) = body.map_err(|e| ApiError::new(400, format!("expected {{\"name\": \"…\"}}: {e}")))?;
    authorize(&app, &headers, &q, Some(&body.name), Scope::Admin)?;
    // Through the actor, so a loaded workspace's view of its own existence stays right.
    if !app.registry.handle(&body.name).create().await? {
        return Err(ApiError::new(409, format!("workspace `{}` already exists", body.name)).workspace(&body.name));
    }
    Ok((StatusCode::CREATED, Json(json!({"name": body.name, "created": true}))))
}

pub async fn get_workspace(State(app): State<AppState>, Path(ws): Path<String>, Query(q): Query<HashMap<String, String>>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    authorize(&app, &headers, &q, Some(&ws), Scope::Read)?;
    require_existing(&app, &ws)?;
    let snap = app.registry.handle(&ws).snapshot().await?;
    Ok(Json(json!({"workspace": ws, "data": snap.data, "heads": snap.heads})))
}

pub async fn delete_workspace(State(app): State<AppState>, Path(ws): Path<String>, Query(q): Query<HashMap<String, String>>, headers: HeaderMap) -> Result<StatusCode, ApiError> {
    authorize(&app, &headers, &q, Some(&ws), Scope::Admin)?;
    require_existing(&app, &ws)?;
    if app.registry.handle(&ws).delete().await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(404, format!("workspace `{ws}` does not exist")).workspace(&ws))
    }
}

pub async fn get_key(State(app): State<AppState>, Path((ws, key)): Path<(String, String)>, Query(q): Query<HashMap<String, String>>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    authorize(&app, &headers, &q, Some(&ws), Scope::Read)?;
    require_existing(&app, &ws)?;
    let (entry, heads) = app.registry.handle(&ws).get(key.clone()).await?;
    match entry {
        Some(e) if e.value.is_some() => Ok(Json(json!({"workspace": ws, "key": key, "value": e.value, "timestamp": e.timestamp, "heads": heads}))),
        _ => Err(ApiError::new(404, format!("key `{key}` does not exist")).workspace(&ws).key(&key)),
    }
}

#[derive(Deserialize)]
pub struct PutBody {
    value: Value,
    #[serde(default)]
    timestamp: Option<u64>,
}

pub async fn put_key(
    State(app): State<AppState>,
    Path((ws, key)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Result<Json<PutBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    authorize(&app, &headers, &q, Some(&ws), Scope::Write)?;
    let Json(body) = body.map_err(|e| ApiError::new(400, format!("expected {{\"value\": …, \"timestamp\"?: µs}}: {e}")).workspace(&ws).key(&key))?;
    write_one(&app, &ws, Op::put(key, body.value, body.timestamp)).await
}

pub async fn delete_key(State(app): State<AppState>, Path((ws, key)): Path<(String, String)>, Query(q): Query<HashMap<String, String>>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    authorize(&app, &headers, &q, Some(&ws), Scope::Write)?;
    let timestamp = match q.get("timestamp") {
        None => None,
        Some(t) => Some(t.parse().map_err(|_| ApiError::new(400, "`timestamp` must be Unix microseconds").workspace(&ws).key(&key))?),
    };
    write_one(&app, &ws, Op::delete(key, timestamp)).await
}

async fn write_one(app: &AppState, ws: &str, op: Op) -> Result<Json<Value>, ApiError> {
    let key = op.key.clone();
    let out = app.registry.handle(ws).write(Write::Op(op)).await.map_err(|e| ApiError::from(e).key(&key))?;
    let applied = out.superseded.is_empty();
    let timestamp = out.applied.first().and_then(|o| o.timestamp);
    Ok(Json(json!({"workspace": ws, "key": key, "applied": applied, "timestamp": timestamp, "heads": out.heads})))
}

pub async fn history(State(app): State<AppState>, Path(ws): Path<String>, Query(q): Query<HashMap<String, String>>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    authorize(&app, &headers, &q, Some(&ws), Scope::Read)?;
    let at: Option<Vec<String>> = q.get("at").map(|h| h.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect());
    let limit = match q.get("limit") {
        None => 1000,
        Some(l) => l.parse::<usize>().ok().filter(|l| *l > 0).ok_or_else(|| ApiError::new(400, "`limit` must be a positive integer").workspace(&ws))?,
    };
    require_existing(&app, &ws)?;
    match app.registry.handle(&ws).history(limit, at.clone()).await? {
        HistoryReply::At { data } => Ok(Json(json!({"workspace": ws, "at": at, "data": data}))),
        HistoryReply::Changes { total, heads, changes } => Ok(Json(json!({"workspace": ws, "heads": heads, "total": total, "changes": changes}))),
    }
}
