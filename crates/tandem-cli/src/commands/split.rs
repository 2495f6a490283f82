//! `tandem split CONFIG --out DIR`: write the configured split as files other libraries read.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use tandem_data::{Interactions, Progress};

use crate::config::Config;

/// Writes `DIR/train.tsv`, `DIR/test.tsv` and (when non-empty) `DIR/valid.tsv` with the header
/// `user item timestamp` and raw ids: the layout `evaluate-split` and the canonical splits use.
pub fn split(config_path: &Path, overrides: &[String], out: &Path, progress: &dyn Progress) -> Result<()> {
    let cfg = Config::load(config_path, overrides)?;
    let data = cfg.data.load(progress).context("loading data")?;
    let split = super::run::split_data(&cfg, data.interactions.clone(), &data)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let write = |name: &str, part: &Interactions| -> Result<()> {
        let path = out.join(name);
        let mut w = std::io::BufWriter::new(
            std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?,
        );
        writeln!(w, "user\titem\ttimestamp")?;
        for r in part.iter() {
            writeln!(w, "{}\t{}\t{}", data.users.raw(r.user), data.items.raw(r.item), r.time)?;
        }
        w.flush().with_context(|| format!("writing {}", path.display()))
    };
    write("train.tsv", &split.train)?;
    write("test.tsv", &split.test)?;
    if !split.valid.is_empty() {
        write("valid.tsv", &split.valid)?;
    }
    eprintln!("{}\nwrote {}", split.report, out.display());
    Ok(())
}
