//! A progress-reporting hook, so libraries can report long steps without knowing about terminals.

/// Receives progress for named steps. The binary implements it with progress bars; libraries
/// and tests use [`NoProgress`].
pub trait Progress: Sync {
    /// Starts a step of `total` units (bytes, users, items; `0` when unknown).
    fn step(&self, label: &str, total: u64) -> Box<dyn ProgressStep + '_>;
}

/// One running step; it finishes when dropped.
pub trait ProgressStep: Sync {
    /// Marks `n` more units done.
    fn inc(&self, n: u64);

    /// Shows a status line next to the step (a training loss, a rate); ignored by default.
    fn message(&self, _text: &str) {}
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn step(&self, _label: &str, _total: u64) -> Box<dyn ProgressStep + '_> {
        Box::new(NoProgress)
    }
}

impl ProgressStep for NoProgress {
    fn inc(&self, _n: u64) {}
}
