//! One function per subcommand.

mod assignment;
mod evaluate_split;
mod generate;
mod inspect;
mod recommend;
mod run;
mod serve;
mod split;
mod tune;

pub use assignment::assignment;
pub use evaluate_split::{evaluate_split, SplitEval};
pub use generate::generate;
pub use inspect::inspect;
pub use recommend::recommend;
pub use run::run;
pub use serve::serve;
pub use split::split;
pub use tune::{parse_duration, tune, TuneOptions};

use anyhow::{Context, Result};

/// Sizes rayon's global pool (0 = one thread per core). Only the first call takes effect.
pub(crate) fn set_threads(threads: usize) -> Result<()> {
    if threads > 0 {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().context("cannot size the thread pool")?;
    }
    Ok(())
}
