//! Tandem's HTTP service (SPEC §9): any saved model or two-stage pipeline behind a JSON API.
//!
//! - `GET /v1/recommend?user=ID&k=10` and `POST /v1/recommend` (a user, an anonymous
//!   session's items, or both): top k with per-stage timings; unknown users with no items get
//!   the most popular items.
//! - `GET /v1/similar?item=ID&k=10`: the model's similar items.
//! - `POST /v1/interactions`: new interactions, fsynced to the log before the answer, used
//!   by the very next recommendation (the history is folded in by the model), replayed on start.
//! - `/health`, `/ready`, `/metrics` (Prometheus), `POST /admin/reload` (the model swapped
//!   atomically; requests in flight finish on the old one), `/openapi.json`, and a demo page at `/`.
//!
//! Models with item vectors retrieve through an exact or an IVF index
//! (`tandem_models::index`); a pipeline indexes its own retrievers.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let options = tandem_serve::Options::new("out/models/als".into());
//! let state = std::sync::Arc::new(tandem_serve::AppState::new(options)?);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, tandem_serve::router(state)).await?;
//! # Ok(()) }
//! ```

// The one unsafe call is `memory::trim` (a foreign call with no preconditions).
#![deny(unsafe_code)]

pub mod error;
pub mod memory;
pub mod metrics;
mod routes;
pub mod state;
pub mod wal;

pub use error::ServeError;
pub use routes::router;
pub use state::{AppState, Options};
pub use tandem_models::index::{self, IndexKind, ItemIndex};
