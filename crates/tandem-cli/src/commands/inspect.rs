//! `tandem inspect CONFIG`: what the data holds and what the split does to it.

use std::path::Path;

use anyhow::{Context, Result};
use tandem_data::Progress;

use crate::config::Config;

/// Prints data statistics and the configured split's counts.
pub fn inspect(config_path: &Path, overrides: &[String], progress: &dyn Progress) -> Result<()> {
    let cfg = Config::load(config_path, overrides)?;
    let data = cfg.data.load(progress).context("loading data")?;
    for r in &data.reports {
        println!("{r}");
    }
    println!("{}", serde_json::to_string_pretty(&data.stats()).expect("stats serialise"));
    let with_meta = data.item_info.iter().filter(|i| i.title.is_some() || !i.genres.is_empty()).count();
    println!("items with metadata: {with_meta} of {}", data.n_items());
    let split = cfg.split.split(&data.interactions, data.n_users(), &data.items).context("splitting")?;
    println!("{}", split.report);
    Ok(())
}
