//! Model directories (SPEC §8): `manifest.json` (kind, parameters, data fingerprint, versions),
//! `tensors.safetensors` (the model's state), `history.safetensors` (training histories, so
//! history-based models can recommend), `users.txt` and `items.txt` (raw ids by index).

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tandem_data::{Csr, IdMap};
use tandem_models::artifact::{put_csr, read_tensors, write_tensors, TensorReader, Tensors};
use tandem_models::Retriever;
use tandem_rank::PipelineSpec;

/// The artifact layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version; a different one is refused.
    pub format_version: u32,
    /// The Tandem that wrote it.
    pub tandem_version: String,
    /// The model name in the config.
    pub name: String,
    /// The model kind.
    pub kind: String,
    /// The model's parameters.
    pub params: serde_json::Value,
    /// What it was trained on.
    pub data: DataInfo,
}

/// The training data's identity.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DataInfo {
    /// FNV-1a over the id maps and the training matrix.
    pub fingerprint: String,
    /// Users known.
    pub users: usize,
    /// Items known.
    pub items: usize,
    /// Training interactions (distinct user-item pairs).
    pub interactions: usize,
}

/// FNV-1a 64 over the raw ids and the training matrix' structure.
pub fn fingerprint(users: &IdMap, items: &IdMap, history: &Csr) -> DataInfo {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for id in users.iter().chain(std::iter::once("\u{0}")).chain(items.iter()) {
        eat(id.as_bytes());
        eat(&[0]);
    }
    for &p in history.indptr() {
        eat(&(p as u64).to_le_bytes());
    }
    for &i in history.indices() {
        eat(&i.to_le_bytes());
    }
    DataInfo { fingerprint: format!("{h:016x}"), users: users.len(), items: items.len(), interactions: history.nnz() }
}

/// Writes `model` (named `name`, trained on `history`) to `dir`.
pub fn save(dir: &Path, name: &str, model: &dyn Retriever, users: &IdMap, items: &IdMap, history: &Csr) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let art = model.artifact();
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        tandem_version: env!("CARGO_PKG_VERSION").to_string(),
        name: name.to_string(),
        kind: art.kind.to_string(),
        params: art.params,
        data: fingerprint(users, items, history),
    };
    write_tensors(&dir.join("tensors.safetensors"), &art.tensors)?;
    let mut h = Tensors::new();
    put_csr(&mut h, "history", history);
    write_tensors(&dir.join("history.safetensors"), &h)?;
    let ids = |m: &IdMap| m.iter().collect::<Vec<_>>().join("\n") + "\n";
    std::fs::write(dir.join("users.txt"), ids(users)).context("writing users.txt")?;
    std::fs::write(dir.join("items.txt"), ids(items)).context("writing items.txt")?;
    std::fs::write(dir.join("manifest.json"), serde_json::to_string_pretty(&manifest)? + "\n")
        .context("writing manifest.json")?;
    Ok(())
}

/// A loaded model directory.
pub struct Loaded {
    pub manifest: Manifest,
    pub model: Box<dyn Retriever>,
    pub users: IdMap,
    pub items: IdMap,
    pub history: Csr,
}

fn read_ids(path: &Path) -> Result<IdMap> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut m = IdMap::new();
    for (n, line) in text.lines().enumerate() {
        if m.get_or_insert(line) as usize != n {
            bail!("{}, line {}: duplicate id '{line}'", path.display(), n + 1);
        }
    }
    Ok(m)
}

/// Loads a model directory, refusing other format versions and inconsistent parts.
pub fn load(dir: &Path) -> Result<Loaded> {
    let mpath = dir.join("manifest.json");
    let text = std::fs::read_to_string(&mpath)
        .with_context(|| format!("{} is not a Tandem model directory (no readable manifest.json)", dir.display()))?;
    let raw: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", mpath.display()))?;
    let version = raw.get("format_version").and_then(|v| v.as_u64());
    if version != Some(FORMAT_VERSION as u64) {
        bail!(
            "{}: model format version {} was written by Tandem {}; this Tandem {} reads version {FORMAT_VERSION} — retrain the model with this version",
            mpath.display(),
            version.map_or("unknown".to_string(), |v| v.to_string()),
            raw.get("tandem_version").and_then(|v| v.as_str()).unwrap_or("unknown"),
            env!("CARGO_PKG_VERSION"),
        );
    }
    let manifest: Manifest =
        serde_json::from_value(raw).with_context(|| format!("{}: malformed manifest", mpath.display()))?;
    let tensors = read_tensors(&dir.join("tensors.safetensors"))?;
    let model = PipelineSpec::from_artifact(&manifest.kind, manifest.params.clone(), &tensors)
        .with_context(|| format!("loading {}", dir.display()))?;
    let history = TensorReader::new(&read_tensors(&dir.join("history.safetensors"))?, "history").csr("history")?;
    let users = read_ids(&dir.join("users.txt"))?;
    let items = read_ids(&dir.join("items.txt"))?;
    let found = fingerprint(&users, &items, &history);
    if found != manifest.data {
        bail!(
            "{}: the id maps and histories do not match the data the model was trained on (fingerprint {} expected, {} found)",
            dir.display(),
            manifest.data.fingerprint,
            found.fingerprint
        );
    }
    if model.n_items() != items.len() {
        bail!("{}: the model scores {} items but items.txt lists {}", dir.display(), model.n_items(), items.len());
    }
    Ok(Loaded { manifest, model, users, items, history })
}

/// Fails unless `loaded` was trained on data with this fingerprint.
pub fn check_same_data(loaded: &Loaded, users: &IdMap, items: &IdMap, history: &Csr) -> Result<()> {
    let here = fingerprint(users, items, history);
    if here != loaded.manifest.data {
        bail!(
            "model '{}' was trained on other data (fingerprint {}, {} users, {} items, {} interactions); this data has fingerprint {} ({} users, {} items, {} interactions)",
            loaded.manifest.name,
            loaded.manifest.data.fingerprint,
            loaded.manifest.data.users,
            loaded.manifest.data.items,
            loaded.manifest.data.interactions,
            here.fingerprint,
            here.users,
            here.items,
            here.interactions
        );
    }
    Ok(())
}
