//! Errors of fitting and using models, and the range check every parameter uses.

use std::ops::{Bound, RangeBounds};

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
        allowed: String,
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
    pub fn invalid(name: &str, value: impl std::fmt::Debug, allowed: impl Into<String>) -> Self {
        ModelError::InvalidParameter { name: name.to_string(), value: format!("{value:?}"), allowed: allowed.into() }
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

/// A number a parameter can hold; floats must also be finite.
pub trait Number: PartialOrd + std::fmt::Debug + Copy {
    /// Whether the value is finite (always, for integers).
    fn finite(self) -> bool {
        true
    }
}
impl Number for usize {}
impl Number for u32 {}
impl Number for u64 {}
impl Number for f32 {
    fn finite(self) -> bool {
        self.is_finite()
    }
}
impl Number for f64 {
    fn finite(self) -> bool {
        self.is_finite()
    }
}

/// `Ok` when the parameter `name` is finite and lies in `range`, else the error naming it and
/// the range as `0.0 < name <= 10.0` (NaN lies in no range). Every model's `check` is a list of these.
pub fn within<T: Number>(name: &str, value: T, range: impl RangeBounds<T>) -> Result<()> {
    if value.finite() && range.contains(&value) {
        return Ok(());
    }
    let lo = match range.start_bound() {
        Bound::Included(v) => format!("{v:?} <= "),
        Bound::Excluded(v) => format!("{v:?} < "),
        Bound::Unbounded => String::new(),
    };
    let hi = match range.end_bound() {
        Bound::Included(v) => format!(" <= {v:?}"),
        Bound::Excluded(v) => format!(" < {v:?}"),
        Bound::Unbounded if value.finite() => String::new(),
        Bound::Unbounded => ", finite".into(),
    };
    Err(ModelError::invalid(name, value, format!("{lo}{name}{hi}")))
}

/// Result alias for models.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::ops::Bound::{Excluded, Included};

    #[test]
    fn ranges_are_named_as_inequalities_and_floats_must_be_finite() {
        let msg = |r: Result<()>| r.unwrap_err().to_string();
        assert!(within("factors", 64usize, 1..=1024).is_ok() && within("lr", 0.5f32, 0.0..1.0).is_ok());
        assert_eq!(msg(within("factors", 0usize, 1..=1024)), "invalid parameter factors = 0: 1 <= factors <= 1024");
        assert_eq!(
            msg(within("lr", 0.0f32, (Excluded(0.0), Included(10.0)))),
            "invalid parameter lr = 0.0: 0.0 < lr <= 10.0"
        );
        assert_eq!(msg(within("alpha", f32::INFINITY, 0.0..)), "invalid parameter alpha = inf: 0.0 <= alpha, finite");
        assert_eq!(msg(within("p", 1.0f32, 0.0..1.0)), "invalid parameter p = 1.0: 0.0 <= p < 1.0");
        assert!(within("m", f32::NAN, ..).is_err(), "NaN lies in no range");
        assert_eq!(msg(within("k", 7usize, ..5)).rsplit(": ").next(), Some("k < 5"));
    }
}
