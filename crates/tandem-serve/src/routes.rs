//! The HTTP API (see `openapi.json`, served at `/openapi.json`). Scoring runs on the blocking
//! pool, never on the async workers; every error is a JSON body with a 4xx/5xx status.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::error::{error_body, ServeError};
use crate::state::{recommend, AppState, Ask, Served};
use crate::wal::Event;

type Shared = Arc<AppState>;
type ApiResult = Result<Response, ServeError>;

/// The service's routes over `state`.
pub fn router(state: Shared) -> Router {
    let max_body = state.options.max_body;
    Router::new()
        .route("/", get(page))
        .route("/openapi.json", get(openapi))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/v1/model", get(model_info))
        .route("/v1/recommend", get(recommend_get).post(recommend_post))
        .route("/v1/similar", get(similar))
        .route("/v1/items", get(list_items))
        .route("/v1/users", get(list_users))
        .route("/v1/interactions", post(interactions))
        .route("/admin/reload", post(reload))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// Counts every request by route template and status.
async fn observe(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    let start = Instant::now();
    let res = next.run(req).await;
    state.metrics.observe(&route, res.status().as_u16(), start.elapsed().as_secs_f64());
    res
}

async fn not_found() -> Response {
    error_body(StatusCode::NOT_FOUND, "no such route (see /openapi.json)")
}

async fn method_not_allowed() -> Response {
    error_body(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this route (see /openapi.json)")
}

async fn page() -> Html<&'static str> {
    Html(include_str!("page.html"))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], include_str!("openapi.json")).into_response()
}

async fn health() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

async fn ready(State(state): State<Shared>) -> Response {
    let s = state.served.load();
    Json(json!({ "status": "ready", "model": s.loaded.manifest.name, "loaded_at": s.loaded_at })).into_response()
}

async fn metrics(State(state): State<Shared>) -> Response {
    let text = state.metrics.render();
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}

async fn model_info(State(state): State<Shared>) -> Response {
    let s = state.served.load();
    let m = &s.loaded.manifest;
    Json(json!({
        "name": m.name,
        "kind": m.kind,
        "dir": s.dir,
        "users": s.loaded.users.len(),
        "items": s.loaded.items.len(),
        "index": s.index.as_ref().map(|i| i.kind()),
        "loaded_at": s.loaded_at,
        "tandem_version": m.tandem_version,
    }))
    .into_response()
}

/// A query-string or body rejection as our JSON error, keeping its status (413 for a body
/// over the limit, 415 for a wrong content type, 400/422 otherwise).
fn rejected(status: StatusCode, text: String) -> ServeError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE => ServeError::Status(status, text),
        _ => ServeError::BadRequest(text),
    }
}

fn query_of<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ServeError> {
    q.map(|Query(v)| v).map_err(|e| rejected(e.status(), e.body_text()))
}

fn json_of<T>(j: Result<Json<T>, JsonRejection>) -> Result<T, ServeError> {
    j.map(|Json(v)| v).map_err(|e| rejected(e.status(), e.body_text()))
}

fn default_k() -> usize {
    10
}

fn default_true() -> bool {
    true
}

/// `GET /v1/recommend` parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecommendParams {
    user: String,
    #[serde(default = "default_k")]
    k: usize,
    #[serde(default = "default_true")]
    exclude_seen: bool,
    #[serde(default)]
    include_history: bool,
}

/// `POST /v1/recommend` body: a user, an anonymous session's items (oldest first), or both.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecommendBody {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    items: Vec<String>,
    #[serde(default = "default_k")]
    k: usize,
    #[serde(default = "default_true")]
    exclude_seen: bool,
    #[serde(default)]
    include_history: bool,
}

fn check_id(what: &str, id: &str) -> Result<(), ServeError> {
    if id.is_empty() || id.chars().count() > 256 || id.chars().any(char::is_control) {
        return Err(ServeError::BadRequest(format!(
            "{what} id must be 1 to 256 characters without control characters (got {} characters)",
            id.chars().count()
        )));
    }
    Ok(())
}

fn check_k(state: &AppState, k: usize) -> Result<(), ServeError> {
    if !(1..=state.options.max_k).contains(&k) {
        return Err(ServeError::BadRequest(format!("k must be between 1 and {} (got {k})", state.options.max_k)));
    }
    Ok(())
}

fn check_items(state: &AppState, items: &[String]) -> Result<(), ServeError> {
    if items.len() > state.options.max_items {
        return Err(ServeError::BadRequest(format!(
            "at most {} items per request (got {})",
            state.options.max_items,
            items.len()
        )));
    }
    items.iter().try_for_each(|i| check_id("item", i))
}

/// Runs CPU-bound work on the blocking pool with the current model.
async fn on_model<T: Send + 'static>(
    state: &Shared,
    work: impl FnOnce(&Served) -> T + Send + 'static,
) -> Result<T, ServeError> {
    // Requests in flight keep the model they started with through a reload.
    let served = state.served.load_full();
    tokio::task::spawn_blocking(move || work(&served)).await.map_err(|e| ServeError::Internal(e.to_string()))
}

async fn recommend_for(state: Shared, body: RecommendBody) -> ApiResult {
    check_k(&state, body.k)?;
    check_items(&state, &body.items)?;
    if let Some(u) = &body.user {
        check_id("user", u)?;
    } else if body.items.is_empty() {
        return Err(ServeError::BadRequest("give a user, items (an anonymous session), or both".into()));
    }
    let live = body.user.as_deref().map(|u| state.live_of(u)).unwrap_or_default();
    let rec = on_model(&state, move |served| {
        let ask = Ask {
            user: body.user.as_deref(),
            live: &live,
            items: &body.items,
            k: body.k,
            exclude_seen: body.exclude_seen,
            include_history: body.include_history,
        };
        recommend(served, &ask)
    })
    .await?;
    Ok(Json(rec).into_response())
}

async fn recommend_get(State(state): State<Shared>, q: Result<Query<RecommendParams>, QueryRejection>) -> ApiResult {
    let p = query_of(q)?;
    let body = RecommendBody {
        user: Some(p.user),
        items: Vec::new(),
        k: p.k,
        exclude_seen: p.exclude_seen,
        include_history: p.include_history,
    };
    recommend_for(state, body).await
}

async fn recommend_post(State(state): State<Shared>, j: Result<Json<RecommendBody>, JsonRejection>) -> ApiResult {
    recommend_for(state, json_of(j)?).await
}

/// `GET /v1/similar` parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SimilarParams {
    item: String,
    #[serde(default = "default_k")]
    k: usize,
}

async fn similar(State(state): State<Shared>, q: Result<Query<SimilarParams>, QueryRejection>) -> ApiResult {
    let p = query_of(q)?;
    check_k(&state, p.k)?;
    check_id("item", &p.item)?;
    let out = on_model(&state, move |served| {
        let m = &served.loaded;
        let i = m.items.get(&p.item).ok_or_else(|| {
            ServeError::NotFound(format!("unknown item '{}' (the model knows {} items)", p.item, m.items.len()))
        })?;
        let start = Instant::now();
        let items: Vec<_> = m
            .model
            .similar_items(i, p.k)
            .into_iter()
            .filter(|s| s.score.is_finite())
            .map(|s| served.rec_item(s.item, s.score))
            .collect();
        let total = start.elapsed().as_secs_f64() * 1e3;
        Ok::<_, ServeError>(json!({ "item": p.item, "items": items, "timings_ms": { "total": total } }))
    })
    .await??;
    Ok(Json(out).into_response())
}

/// `GET /v1/items` parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemsParams {
    #[serde(default)]
    query: String,
    #[serde(default = "default_k")]
    limit: usize,
}

/// Items whose id or title contains `query` (case-insensitive), most popular first.
async fn list_items(State(state): State<Shared>, q: Result<Query<ItemsParams>, QueryRejection>) -> ApiResult {
    let p = query_of(q)?;
    check_k(&state, p.limit)?;
    if p.query.len() > 256 {
        return Err(ServeError::BadRequest("query must be at most 256 bytes".into()));
    }
    let out = on_model(&state, move |served| {
        let needle = p.query.to_lowercase();
        let matches = |i: u32| served.search_keys.get(i as usize).is_some_and(|k| k.contains(&needle));
        let found: Vec<_> = served
            .popular
            .iter()
            .filter(|s| matches(s.item))
            .take(p.limit)
            .map(|s| served.rec_item(s.item, s.score))
            .collect();
        json!({ "items": found })
    })
    .await?;
    Ok(Json(out).into_response())
}

/// `GET /v1/users` parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersParams {
    #[serde(default = "default_k")]
    limit: usize,
}

/// The first `limit` users the model knows (to pick from).
async fn list_users(State(state): State<Shared>, q: Result<Query<UsersParams>, QueryRejection>) -> ApiResult {
    let p = query_of(q)?;
    check_k(&state, p.limit)?;
    let served = state.served.load();
    let users: Vec<&str> = served.loaded.users.iter().take(p.limit).collect();
    Ok(Json(json!({ "users": users, "total": served.loaded.users.len() })).into_response())
}

/// `POST /v1/interactions` body: one user's new interactions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InteractionsBody {
    user: String,
    #[serde(default)]
    item: Option<String>,
    #[serde(default)]
    items: Vec<String>,
    #[serde(default)]
    weight: Option<f32>,
}

async fn interactions(State(state): State<Shared>, j: Result<Json<InteractionsBody>, JsonRejection>) -> ApiResult {
    let b = json_of(j)?;
    check_id("user", &b.user)?;
    // The bound is on `items` (what the description says); `item` is one more.
    check_items(&state, &b.items)?;
    if let Some(item) = &b.item {
        check_id("item", item)?;
    }
    let items: Vec<String> = b.item.into_iter().chain(b.items).collect();
    if items.is_empty() {
        return Err(ServeError::BadRequest("give `item` or `items`".into()));
    }
    let weight = b.weight.unwrap_or(1.0);
    // Bounded below too: a weight that rounds to zero in f32 would record nothing.
    if !(weight.is_finite() && (1e-6..=1e6).contains(&weight)) {
        return Err(ServeError::BadRequest(format!("weight must be in [1e-6, 1e6] (got {weight})")));
    }
    let known = state.served.load();
    let unknown: Vec<&String> = items.iter().filter(|i| known.loaded.items.get(i).is_none()).collect();
    if !unknown.is_empty() {
        return Err(ServeError::NotFound(format!(
            "unknown items {unknown:?}: the model can only use items it was trained with"
        )));
    }
    let time = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let events: Vec<Event> = items.into_iter().map(|item| Event { user: b.user.clone(), item, weight, time }).collect();
    let n = events.len();
    // The log is fsynced before the answer: a 2xx means the interactions survive a crash.
    let st = state.clone();
    tokio::task::spawn_blocking(move || st.record(events)).await.map_err(|e| ServeError::Internal(e.to_string()))??;
    Ok((StatusCode::CREATED, Json(json!({ "recorded": n, "user": b.user, "durable": state.wal.is_some() })))
        .into_response())
}

/// `POST /admin/reload` body (optional): another model directory.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReloadBody {
    #[serde(default)]
    model_dir: Option<std::path::PathBuf>,
}

/// The directory a reload may load: an existing directory, named without `..`, and (unless
/// an admin token guards reloads) inside the models root.
fn reload_dir(options: &crate::state::Options, dir: &std::path::Path) -> Result<std::path::PathBuf, ServeError> {
    let shown = dir.display();
    if dir.as_os_str().is_empty() || dir.to_string_lossy().chars().any(char::is_control) {
        return Err(ServeError::BadRequest(format!(
            "model_dir {shown:?}: not a path (empty or with control characters)"
        )));
    }
    if dir.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Err(ServeError::BadRequest(format!("model_dir {shown}: `..` is not allowed")));
    }
    let real = dir.canonicalize().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ServeError::NotFound(format!("model_dir {shown}: no such directory")),
        _ => ServeError::Status(StatusCode::UNPROCESSABLE_ENTITY, format!("model_dir {shown}: {e}")),
    })?;
    if options.admin_token.is_none() {
        let root = options.models_root();
        // Symlinks resolved on both sides: a link inside the root to elsewhere is elsewhere.
        let inside = root.canonicalize().is_ok_and(|r| real.starts_with(r));
        if !inside {
            return Err(ServeError::Status(
                StatusCode::FORBIDDEN,
                format!(
                    "model_dir {shown} is outside the models root {} (serve with --models-root, or set --admin-token to \
                     reload from anywhere)",
                    root.display()
                ),
            ));
        }
    }
    if !real.is_dir() {
        return Err(ServeError::Status(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("model_dir {shown} is not a directory"),
        ));
    }
    Ok(real)
}

async fn reload(State(state): State<Shared>, headers: axum::http::HeaderMap, body: axum::body::Bytes) -> ApiResult {
    if let Some(token) = &state.options.admin_token {
        let given =
            headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        // Compared in full whatever the prefix, so timing says little about the token.
        let same = given.is_some_and(|g| {
            g.len() == token.len() && g.bytes().zip(token.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0
        });
        if !same {
            return Err(ServeError::Unauthorized("reload needs `Authorization: Bearer <admin token>`".into()));
        }
    }
    let b: ReloadBody = if body.is_empty() {
        ReloadBody::default()
    } else {
        // An object (or null); serde would also read a struct from an array.
        let value: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| ServeError::BadRequest(format!("reload body: {e}")))?;
        if !(value.is_object() || value.is_null()) {
            return Err(ServeError::BadRequest(
                "reload body: expected a JSON object like {\"model_dir\": \"...\"}".into(),
            ));
        }
        serde_json::from_value(value).map_err(|e| ServeError::BadRequest(format!("reload body: {e}")))?
    };
    let _one = state.reloading.lock().await;
    let dir = match b.model_dir {
        Some(dir) => reload_dir(&state.options, &dir)?,
        None => state.served.load().dir.clone(),
    };
    let (kind, share) = (state.options.index, state.options.ivf_probe);
    let start = Instant::now();
    let fresh = tokio::task::spawn_blocking(move || Served::load(&dir, kind, share))
        .await
        .map_err(|e| ServeError::Internal(e.to_string()))?
        // What the directory holds is the client's mistake (422), not the server's.
        .map_err(|e| match e {
            ServeError::Model(m) => ServeError::Status(StatusCode::UNPROCESSABLE_ENTITY, format!("not reloaded: {m}")),
            other => other,
        })?;
    let info = json!({
        "reloaded": fresh.dir,
        "model": fresh.loaded.manifest.name,
        "kind": fresh.loaded.manifest.kind,
        "seconds": start.elapsed().as_secs_f64(),
    });
    // Requests in flight hold the old model's Arc and finish on it.
    state.served.store(Arc::new(fresh));
    state.metrics.reloads.inc();
    Ok(Json(info).into_response())
}
