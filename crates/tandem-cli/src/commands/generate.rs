//! `tandem generate`: a synthetic log on disk.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use tandem_data::synthetic::SyntheticSpec;
use tandem_data::Progress;

/// Writes the log `spec` describes to `out`: one CSV file, or with `hm` the H&M layout in the
/// directory `out`.
pub fn generate(spec: &SyntheticSpec, out: &Path, hm: bool, progress: &dyn Progress) -> Result<()> {
    spec.check().context("generate")?;
    let dir = if hm { Some(out) } else { out.parent().filter(|d| !d.as_os_str().is_empty()) };
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if hm {
        let n =
            spec.write_hm(out, progress).with_context(|| format!("writing the H&M layout into {}", out.display()))?;
        eprintln!(
            "wrote {} (transactions_train.csv: {} rows; customers.csv: {}; articles.csv: {}); read it with format: hm",
            out.display(),
            n.transactions,
            n.customers,
            n.articles
        );
        return Ok(());
    }
    let file = std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut w = std::io::BufWriter::new(file);
    spec.write_csv(&mut w, progress).and_then(|_| w.flush()).with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "wrote {} ({} rows, {} users, {} items); read it with format: delimited and columns user, item, time: timestamp",
        out.display(),
        spec.interactions,
        spec.users,
        spec.items
    );
    Ok(())
}
