//! Errors of fitting and using models.

/// What can go wrong when fitting a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A parameter is outside its allowed range.
    #[error("invalid parameter {name} = {value}: {allowed}")]
    InvalidParameter {
        /// The parameter's name, or its key path inside a pipeline or config
        /// (`retrievers.0.learning_rate`).
        name: String,
        /// The given value.
        value: String,
        /// The allowed range, in words.
        allowed: &'static str,
    },
    /// Training produced non-finite values.
    #[error("{model} diverged (non-finite factors or loss): {hint}")]
    Diverged {
        /// The model kind.
        model: &'static str,
        /// What to try.
        hint: String,
    },
    /// The model cannot handle data of this size.
    #[error("{model} cannot fit {what}: {limit}")]
    TooLarge {
        /// The model kind.
        model: &'static str,
        /// What is too large.
        what: String,
        /// The limit and what to use instead.
        limit: &'static str,
    },
    /// A saved model could not be read back.
    #[error("cannot load {path}: {message}")]
    Artifact {
        /// The file or model.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The training data has no interactions.
    #[error("cannot fit {model}: the training data has no interactions")]
    EmptyTrainingData {
        /// The model kind.
        model: &'static str,
    },
}

impl ModelError {
    /// A parameter outside its allowed values.
    pub fn invalid(name: &str, value: impl std::fmt::Debug, allowed: &'static str) -> Self {
        ModelError::InvalidParameter { name: name.to_string(), value: format!("{value:?}"), allowed }
    }

    /// The same error with `prefix.` before a parameter's name: its key path from a
    /// pipeline's or config's point of view. Other errors are returned as they are.
    pub fn at(self, prefix: &str) -> Self {
        match self {
            ModelError::InvalidParameter { name, value, allowed } => {
                ModelError::InvalidParameter { name: format!("{prefix}.{name}"), value, allowed }
            }
            other => other,
        }
    }
}

/// Result alias for models.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
