//! Errors of fitting and using models.

/// What can go wrong when fitting a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A parameter is outside its allowed range.
    #[error("invalid parameter {name} = {value}: {allowed}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
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

/// Result alias for models.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
