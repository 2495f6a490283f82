//! The HTTP API end to end, through the router: answers, live interactions and their log,
//! reloads, limits and JSON errors.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tandem_data::read::ItemInfo;
use tandem_data::{IdMap, NoProgress};
use tandem_models::testing::checkerboard;
use tandem_models::{AlsParams, Retriever, TrainSet};
use tandem_rank::model_dir::{save, DataParts};
use tandem_serve::{router, AppState, IndexKind, Options};
use tower::ServiceExt;

/// Saves `model` fitted on `t` with raw ids `u0..` and `i0..`.
fn save_model(dir: &Path, name: &str, model: &dyn Retriever, t: &TrainSet) {
    let (mut users, mut items) = (IdMap::new(), IdMap::new());
    (0..t.n_users()).for_each(|u| {
        users.get_or_insert(&format!("u{u}"));
    });
    (0..t.n_items()).for_each(|i| {
        items.get_or_insert(&format!("i{i}"));
    });
    let info: Vec<ItemInfo> = (0..t.n_items())
        .map(|i| ItemInfo {
            title: Some(format!("Film {i}")),
            genres: vec![["Even", "Odd"][i % 2].into()],
            ..Default::default()
        })
        .collect();
    save(dir, name, model, &DataParts { users: &users, items: &items, history: &t.user_items, item_info: &info })
        .unwrap();
}

fn als_dir(dir: &Path) {
    let t = checkerboard();
    let m = AlsParams { factors: 2, iterations: 10, regularization: 0.01, alpha: 5.0, ..Default::default() };
    save_model(dir, "als", &m.fit(&t, &NoProgress).unwrap(), &t);
}

fn two_stage_dir(dir: &Path) {
    let t = checkerboard();
    let spec: tandem_rank::TwoStageSpec = serde_json::from_value(json!({
        "retrievers": [{"kind": "als", "factors": 4, "iterations": 5}, {"kind": "popularity"}],
        "candidates": 6,
        "window": 1,
        "ranker": {"kind": "late_fusion", "hidden": [8], "epochs": 3, "batch_size": 16}
    }))
    .unwrap();
    save_model(dir, "pipeline", &spec.fit(&t, tandem_data::Side::default(), &NoProgress).unwrap(), &t);
}

struct Server {
    state: Arc<AppState>,
}

impl Server {
    fn new(options: Options) -> Server {
        Server { state: Arc::new(AppState::new(options).unwrap()) }
    }

    async fn call(&self, method: &str, uri: &str, body: Option<&str>) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).unwrap();
        let res = router(self.state.clone()).oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
        let value =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, value)
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call("GET", uri, None).await
    }

    async fn post(&self, uri: &str, body: &str) -> (StatusCode, Value) {
        self.call("POST", uri, Some(body)).await
    }
}

fn items(v: &Value) -> Vec<String> {
    v["items"].as_array().unwrap().iter().map(|i| i["item"].as_str().unwrap().to_string()).collect()
}

/// Checkerboard user 0 holds the even items except i0 (i2, i4, i6, i8).
const U0_SEEN: [&str; 4] = ["i2", "i4", "i6", "i8"];

#[tokio::test]
async fn users_sessions_and_unknown_users() {
    let dir = tempfile::tempdir().unwrap();
    als_dir(dir.path());
    for index in [IndexKind::Exact, IndexKind::Ivf] {
        let s = Server::new(Options { index, ..Options::new(dir.path().to_path_buf()) });
        let (st, r) = s.get("/v1/recommend?user=u0&k=3&include_history=true").await;
        assert_eq!(st, StatusCode::OK, "{r}");
        assert_eq!(r["known_user"], true);
        let got = items(&r);
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|i| !U0_SEEN.contains(&i.as_str())), "seen items excluded: {got:?}");
        assert_eq!(got[0], "i0", "the one even item user 0 lacks");
        assert_eq!(r["history"].as_array().unwrap().len(), 4);
        assert!(r["timings_ms"]["total"].as_f64().unwrap() >= 0.0);
        let index_name = format!("retrieval ({index:?} index)").to_lowercase();
        assert!(r["timings_ms"][&index_name].is_number(), "{r}");
    }
    let s = Server::new(Options::new(dir.path().to_path_buf()));
    // An anonymous session of odd items gets odd items.
    let (st, r) = s.post("/v1/recommend", r#"{"items": ["i1", "i3", "nope"], "k": 2}"#).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert!(items(&r).iter().all(|i| i[1..].parse::<u32>().unwrap() % 2 == 1), "{r}");
    assert_eq!(r["unknown_items"], json!(["nope"]));
    // Nobody known, nothing given: popularity.
    let (_, r) = s.get("/v1/recommend?user=stranger&k=10").await;
    assert_eq!(r["fallback"], "popularity");
    assert_eq!(items(&r).len(), 10);
    let (st, r) = s.get("/v1/similar?item=i1&k=2").await;
    assert_eq!(st, StatusCode::OK);
    assert!(items(&r).iter().all(|i| i != "i1" && i[1..].parse::<u32>().unwrap() % 2 == 1), "{r}");
}

#[tokio::test]
async fn live_interactions_count_at_once_survive_a_restart_and_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    als_dir(dir.path());
    let wal = dir.path().join("live.wal");
    let options = Options { wal: Some(wal.clone()), ..Options::new(dir.path().to_path_buf()) };
    let s = Server::new(options.clone());
    let (_, before) = s.get("/v1/recommend?user=u0&k=3").await;
    assert_eq!(items(&before)[0], "i0");
    let (st, r) = s.post("/v1/interactions", r#"{"user": "u0", "items": ["i0", "i1", "i3"]}"#).await;
    assert_eq!((st, r["recorded"].as_u64(), r["durable"].as_bool()), (StatusCode::CREATED, Some(3), Some(true)));
    let (_, after) = s.get("/v1/recommend?user=u0&k=3&include_history=true").await;
    let got = items(&after);
    assert!(!got.contains(&"i0".to_string()), "the new item is seen now: {got:?}");
    assert_eq!(after["history"].as_array().unwrap().len(), 7);
    assert!(after["timings_ms"]["scoring"].is_number(), "a new history is folded in by the model: {after}");
    // A new user with live interactions is personalised, not served popularity.
    s.post("/v1/interactions", r#"{"user": "newcomer", "item": "i5"}"#).await;
    let (_, r) = s.get("/v1/recommend?user=newcomer&k=3").await;
    assert!(r["fallback"].is_null() && items(&r).iter().all(|i| i[1..].parse::<u32>().unwrap() % 2 == 1), "{r}");
    // Restart: the log is replayed.
    drop(s);
    let s = Server::new(options);
    let (_, replayed) = s.get("/v1/recommend?user=u0&k=3").await;
    assert_eq!(items(&replayed), got);
    // Reload (another model) keeps them too.
    let other = tempfile::tempdir().unwrap();
    two_stage_dir(other.path());
    let body = json!({ "model_dir": other.path() }).to_string();
    let (st, r) = s.post("/admin/reload", &body).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let (_, m) = s.get("/v1/model").await;
    assert_eq!(m["kind"], "two_stage");
    let (_, r) = s.get("/v1/recommend?user=u0&k=3").await;
    assert!(!items(&r).contains(&"i0".to_string()), "{r}");
    let (_, r) = s.get("/v1/recommend?user=u1&k=3").await;
    assert!(r["timings_ms"]["retrieval"].is_number() && r["timings_ms"]["ranking"].is_number(), "{r}");
    let metrics = s.get("/metrics").await.1;
    let text = metrics.as_str().unwrap();
    assert!(text.contains("tandem_model_reloads_total 1"), "{text}");
    assert!(text.contains(r#"tandem_http_requests_total{route="/v1/recommend",status="200"}"#), "{text}");
    assert!(text.contains("tandem_live_interactions 4"), "{text}");
}

#[tokio::test]
async fn requests_in_flight_during_reloads_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    als_dir(dir.path());
    let s = Arc::new(Server::new(Options::new(dir.path().to_path_buf())));
    let mut tasks = Vec::new();
    for n in 0..40 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            if n % 10 == 0 {
                s.post("/admin/reload", "").await.0
            } else {
                s.get(&format!("/v1/recommend?user=u{}&k=5", n % 20)).await.0
            }
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
}

#[tokio::test]
async fn bad_requests_get_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    als_dir(dir.path());
    let s = Server::new(Options { max_body: 1024, ..Options::new(dir.path().to_path_buf()) });
    let not_a_model = dir.path().join("empty");
    std::fs::create_dir(&not_a_model).unwrap();
    let long = format!("/v1/recommend?user={}", "x".repeat(300));
    let cases: Vec<(&str, &str, Option<String>, StatusCode, &str)> = vec![
        ("GET", "/v1/recommend?user=u0&k=0", None, StatusCode::BAD_REQUEST, "k must be between 1 and 1000"),
        ("GET", "/v1/recommend?user=u0&k=5000", None, StatusCode::BAD_REQUEST, "k must be"),
        ("GET", "/v1/recommend?user=u0&k=ten", None, StatusCode::BAD_REQUEST, "k"),
        ("GET", "/v1/recommend?k=3", None, StatusCode::BAD_REQUEST, "user"),
        ("GET", "/v1/recommend?user=u0&colour=red", None, StatusCode::BAD_REQUEST, "colour"),
        ("GET", &long, None, StatusCode::BAD_REQUEST, "1 to 256 characters"),
        ("GET", "/v1/recommend?user=a%00b", None, StatusCode::BAD_REQUEST, "control characters"),
        ("POST", "/v1/recommend", Some("{".into()), StatusCode::BAD_REQUEST, "EOF"),
        ("POST", "/v1/recommend", Some("{}".into()), StatusCode::BAD_REQUEST, "give a user, items"),
        (
            "POST",
            "/v1/recommend",
            Some(format!("{{\"items\": [{}]}}", vec!["\"i1\""; 300].join(","))),
            StatusCode::PAYLOAD_TOO_LARGE,
            "length limit",
        ),
        ("GET", "/v1/similar?item=missing", None, StatusCode::NOT_FOUND, "unknown item 'missing'"),
        (
            "POST",
            "/v1/interactions",
            Some(r#"{"user": "u0", "item": "missing"}"#.into()),
            StatusCode::NOT_FOUND,
            "missing",
        ),
        (
            "POST",
            "/v1/interactions",
            Some(r#"{"user": "u0"}"#.into()),
            StatusCode::BAD_REQUEST,
            "give `item` or `items`",
        ),
        (
            "POST",
            "/v1/interactions",
            Some(r#"{"user": "u0", "item": "i1", "weight": -1}"#.into()),
            StatusCode::BAD_REQUEST,
            "weight",
        ),
        // Reloads: what is wrong with the directory named, a 4xx each time; only directories
        // under the models root (the model's parent here) without an admin token.
        (
            "POST",
            "/admin/reload",
            Some(r#"{"model_dir": "/no/such/dir"}"#.into()),
            StatusCode::NOT_FOUND,
            "model_dir /no/such/dir: no such directory",
        ),
        (
            "POST",
            "/admin/reload",
            Some(r#"{"model_dir": "/etc"}"#.into()),
            StatusCode::FORBIDDEN,
            "outside the models root",
        ),
        (
            "POST",
            "/admin/reload",
            Some(json!({ "model_dir": dir.path().join("../../etc") }).to_string()),
            StatusCode::BAD_REQUEST,
            "`..` is not allowed",
        ),
        (
            "POST",
            "/admin/reload",
            Some(json!({ "model_dir": not_a_model }).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not a Tandem model directory",
        ),
        (
            "POST",
            "/admin/reload",
            Some(json!({ "model_dir": dir.path().join("users.txt") }).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "is not a directory",
        ),
        ("DELETE", "/v1/recommend", None, StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        ("GET", "/v2/anything", None, StatusCode::NOT_FOUND, "no such route"),
    ];
    for (method, uri, body, status, says) in cases {
        let (st, r) = s.call(method, uri, body.as_deref()).await;
        assert_eq!(st, status, "{method} {uri}: {r}");
        let msg = r["error"]["message"].as_str().unwrap_or_else(|| panic!("{method} {uri}: not a JSON error: {r}"));
        assert_eq!(r["error"]["status"], status.as_u16());
        assert!(msg.contains(says), "{method} {uri}: {msg}");
    }
    // With an admin token, reloads need it.
    let guarded = Server::new(Options { admin_token: Some("s3cret".into()), ..Options::new(dir.path().to_path_buf()) });
    let (st, r) = guarded.post("/admin/reload", "").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{r}");
    let req = Request::post("/admin/reload").header("authorization", "Bearer s3cret").body(Body::empty()).unwrap();
    assert_eq!(router(guarded.state.clone()).oneshot(req).await.unwrap().status(), StatusCode::OK);
    // The token holder may name any directory: /etc is tried, and is not a model.
    let req = Request::post("/admin/reload")
        .header("authorization", "Bearer s3cret")
        .body(Body::from(r#"{"model_dir": "/etc"}"#))
        .unwrap();
    assert_eq!(router(guarded.state.clone()).oneshot(req).await.unwrap().status(), StatusCode::UNPROCESSABLE_ENTITY);
    // The failed reload left the model in place.
    assert_eq!(s.get("/ready").await.0, StatusCode::OK);
    assert_eq!(s.get("/v1/model").await.1["kind"], "als");
}

/// Every operation the OpenAPI description lists exists, and every route the router has is
/// described.
#[tokio::test]
async fn the_openapi_description_matches_the_routes() {
    let dir = tempfile::tempdir().unwrap();
    als_dir(dir.path());
    let s = Server::new(Options::new(dir.path().to_path_buf()));
    let (st, spec) = s.get("/openapi.json").await;
    assert_eq!(st, StatusCode::OK);
    let paths = spec["paths"].as_object().unwrap();
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let body = (method == "post").then_some("{}");
            let (st, r) = s.call(&method.to_uppercase(), path, body).await;
            assert!(
                st != StatusCode::METHOD_NOT_ALLOWED && st != StatusCode::NOT_FOUND
                    || r["error"]["message"]
                        .as_str()
                        .is_some_and(|m| !m.contains("no such route") && !m.contains("method not allowed")),
                "{method} {path}: {st} {r}"
            );
        }
    }
    let source = include_str!("../src/routes.rs");
    for line in source.lines().filter(|l| l.trim_start().starts_with(".route(\"")) {
        let path = line.split('"').nth(1).unwrap();
        assert!(paths.contains_key(path), "{path} is not described in openapi.json");
    }
}

/// A history-based model (item kNN) serves a new user from the interactions just recorded.
#[tokio::test]
async fn item_knn_uses_the_live_history() {
    let dir = tempfile::tempdir().unwrap();
    let t = checkerboard();
    let knn = tandem_models::KnnParams { weighting: tandem_models::Weighting::Cosine, ..Default::default() };
    save_model(dir.path(), "knn", &knn.fit_item_knn(&t, &NoProgress).unwrap(), &t);
    let s = Server::new(Options::new(dir.path().to_path_buf()));
    let (_, r) = s.get("/v1/recommend?user=walker&k=4").await;
    assert_eq!(r["fallback"], "popularity");
    for (item, parity) in [("i1", 1), ("i2", 0)] {
        let user = format!("walker{parity}");
        let body = json!({ "user": user, "item": item }).to_string();
        assert_eq!(s.post("/v1/interactions", &body).await.0, StatusCode::CREATED);
        let (_, r) = s.get(&format!("/v1/recommend?user={user}&k=4")).await;
        let got = items(&r);
        assert!(r["fallback"].is_null() && got.len() == 4, "{r}");
        assert!(got.iter().all(|i| i[1..].parse::<u32>().unwrap() % 2 == parity && i != item), "{item}: {got:?}");
    }
}

/// A user's queries carry at most `max_items` live items (the latest); the log keeps them all.
#[tokio::test]
async fn live_histories_keep_the_latest_items() {
    let dir = tempfile::tempdir().unwrap();
    als_dir(dir.path());
    let wal = dir.path().join("live.wal");
    let options = Options { max_items: 3, wal: Some(wal.clone()), ..Options::new(dir.path().to_path_buf()) };
    let s = Server::new(options);
    for item in ["i1", "i3", "i5", "i7", "i9"] {
        s.post("/v1/interactions", &json!({ "user": "new", "item": item }).to_string()).await;
    }
    let (_, r) = s.get("/v1/recommend?user=new&k=3&include_history=true").await;
    assert_eq!(r["history"], json!(["i5", "i7", "i9"]));
    assert_eq!(std::fs::read_to_string(&wal).unwrap().lines().count(), 5);
}
