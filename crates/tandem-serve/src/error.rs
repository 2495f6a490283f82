//! Errors of the service: each maps to an HTTP status and a JSON body
//! `{"error": {"status": 400, "message": "..."}}`.

use std::path::PathBuf;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// What can go wrong in the service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A request is malformed or asks for something out of range (400).
    #[error("{0}")]
    BadRequest(String),
    /// A user or item the model does not know where one is required (404).
    #[error("{0}")]
    NotFound(String),
    /// The model directory could not be loaded (500 on reload; fatal at start).
    #[error(transparent)]
    Model(#[from] tandem_rank::model_dir::ModelDirError),
    /// A file could not be read or written (500).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The interaction log has an unreadable record with good ones after it (fatal at start).
    #[error(
        "{path}, line {line} (byte {offset}): not an interaction record ({message}); records follow it, so this \
         is damage, not a torn write: start with --wal-recover to move it and everything after it aside"
    )]
    Wal {
        /// The log file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Byte offset of the record.
        offset: u64,
        /// What is wrong.
        message: String,
    },
    /// The interaction log's snapshot is damaged (fatal at start).
    #[error("{path}: {message}")]
    Snapshot {
        /// The snapshot file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An admin request without the right token (401).
    #[error("{0}")]
    Unauthorized(String),
    /// A request rejected with a specific status (413 body too large, 415 not JSON).
    #[error("{1}")]
    Status(StatusCode, String),
    /// A worker failed (500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServeError {
    /// The HTTP status of the error.
    pub fn status(&self) -> StatusCode {
        match self {
            ServeError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ServeError::NotFound(_) => StatusCode::NOT_FOUND,
            ServeError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ServeError::Status(s, _) => *s,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The JSON error body of a status and message.
pub fn error_body(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "status": status.as_u16(), "message": message } });
    (status, Json(body)).into_response()
}

impl IntoResponse for ServeError {
    fn into_response(self) -> Response {
        error_body(self.status(), &self.to_string())
    }
}
