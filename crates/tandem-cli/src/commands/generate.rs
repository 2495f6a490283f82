//! `tandem generate`: a synthetic log on disk.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use tandem_data::synthetic::SyntheticSpec;
use tandem_data::Progress;

/// Writes the log `spec` describes to `out`.
pub fn generate(spec: &SyntheticSpec, out: &Path, progress: &dyn Progress) -> Result<()> {
    spec.check().context("generate")?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
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
