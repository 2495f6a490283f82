//! Model directories (SPEC §8): `manifest.json` (kind, parameters, data fingerprint, versions),
//! `tensors.safetensors` (the model's state), `history.safetensors` (training histories, so
//! history-based models can recommend), `users.txt` and `items.txt` (raw ids by index), and
//! `item_info.json` (titles, years, genres by index) when the data had item metadata. The CLI
//! writes and reads them; the server loads and reloads them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tandem_data::read::ItemInfo;
use tandem_data::{Csr, IdMap};
use tandem_models::artifact::{put_csr, read_tensors, write_tensors, TensorReader, Tensors};
use tandem_models::{ModelError, Retriever};

/// The artifact layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// What can go wrong with a model directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelDirError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The directory has no readable manifest.
    #[error("{0} is not a Tandem model directory (no readable manifest.json)")]
    NotAModelDir(PathBuf),
    /// The manifest is not what this build writes.
    #[error("{path}: {message}")]
    BadManifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A part is inconsistent with the others.
    #[error("{dir}: {message}")]
    Inconsistent {
        /// The model directory.
        dir: PathBuf,
        /// What does not match.
        message: String,
    },
    /// A model meets data other than its training data.
    #[error("{0}")]
    OtherData(String),
    /// The model's own state could not be read or written.
    #[error("{dir}: {source}")]
    Model {
        /// The model directory.
        dir: PathBuf,
        /// The cause.
        source: ModelError,
    },
}

type Result<T> = std::result::Result<T, ModelDirError>;

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
    /// CRC32C (8 hex digits) of each file written beside the manifest, checked at load: a
    /// truncated or damaged file is refused by name. (It catches damage, not tampering.)
    /// Directories written before checksums existed have none and load unchecked.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub checksums: std::collections::BTreeMap<String, String>,
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

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ModelDirError + '_ {
    move |source| ModelDirError::Io { path: path.to_path_buf(), source }
}

fn model_err(dir: &Path) -> impl FnOnce(ModelError) -> ModelDirError + '_ {
    move |source| ModelDirError::Model { dir: dir.to_path_buf(), source }
}

/// What a model directory describes besides the model: the id maps, the training histories
/// and any item metadata (indexed like `items`; may be empty).
pub struct DataParts<'a> {
    /// Raw user ids by index.
    pub users: &'a IdMap,
    /// Raw item ids by index.
    pub items: &'a IdMap,
    /// Training histories (users x items).
    pub history: &'a Csr,
    /// Item metadata by index.
    pub item_info: &'a [ItemInfo],
}

/// Writes `model` (named `name`) and its data's parts to `dir`.
pub fn save(dir: &Path, name: &str, model: &dyn Retriever, data: &DataParts<'_>) -> Result<()> {
    let DataParts { users, items, history, item_info } = *data;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let art = model.artifact();
    let mut manifest = Manifest {
        format_version: FORMAT_VERSION,
        tandem_version: env!("CARGO_PKG_VERSION").to_string(),
        name: name.to_string(),
        kind: art.kind.to_string(),
        params: art.params,
        data: fingerprint(users, items, history),
        checksums: Default::default(),
    };
    write_tensors(&dir.join("tensors.safetensors"), &art.tensors).map_err(model_err(dir))?;
    let mut h = Tensors::new();
    put_csr(&mut h, "history", history);
    write_tensors(&dir.join("history.safetensors"), &h).map_err(model_err(dir))?;
    let ids = |m: &IdMap| m.iter().collect::<Vec<_>>().join("\n") + "\n";
    for (file, map) in [("users.txt", users), ("items.txt", items)] {
        let path = dir.join(file);
        std::fs::write(&path, ids(map)).map_err(io(&path))?;
    }
    let info_path = dir.join("item_info.json");
    if item_info.iter().any(|i| *i != ItemInfo::default()) {
        let text = serde_json::to_string(&item_info[..item_info.len().min(items.len())]).expect("item info serialises");
        std::fs::write(&info_path, text).map_err(io(&info_path))?;
    } else if info_path.exists() {
        std::fs::remove_file(&info_path).map_err(io(&info_path))?;
    }
    for file in ["tensors.safetensors", "history.safetensors", "users.txt", "items.txt", "item_info.json"] {
        let path = dir.join(file);
        if path.exists() {
            manifest.checksums.insert(file.to_string(), checksum(&path)?);
        }
    }
    // The manifest last: a directory without one is not a model, so a crash mid-save never
    // leaves a directory that loads with parts missing.
    let path = dir.join("manifest.json");
    let text = serde_json::to_string_pretty(&manifest).expect("a manifest serialises") + "\n";
    std::fs::write(&path, text).map_err(io(&path))
}

/// The CRC32C of a file, as 8 hex digits.
fn checksum(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    Ok(format!("{:08x}", crc32c::crc32c(&bytes)))
}

/// Fails unless every file the manifest has a checksum for is there with that checksum.
fn verify(dir: &Path, manifest: &Manifest) -> Result<()> {
    for (file, want) in &manifest.checksums {
        // Only plain file names: a manifest must not make the loader read outside `dir`.
        if file.contains(['/', '\\']) || file == ".." {
            return Err(ModelDirError::BadManifest {
                path: dir.join("manifest.json"),
                message: format!("checksum entry for {file:?} is not a file of the directory"),
            });
        }
        let path = dir.join(file);
        let found = checksum(&path)?;
        if &found != want {
            return Err(ModelDirError::Inconsistent {
                dir: dir.to_path_buf(),
                message: format!(
                    "{file} is damaged or was changed after saving (CRC32C {found}, the manifest says {want}); save the model again"
                ),
            });
        }
    }
    Ok(())
}

/// A loaded model directory.
pub struct Loaded {
    /// Its manifest.
    pub manifest: Manifest,
    /// The model (a retriever or a whole pipeline).
    pub model: Box<dyn Retriever>,
    /// Raw user ids by index.
    pub users: IdMap,
    /// Raw item ids by index.
    pub items: IdMap,
    /// Training histories (users x items).
    pub history: Csr,
    /// Item metadata by index (empty when the data had none).
    pub item_info: Vec<ItemInfo>,
}

impl Loaded {
    /// Items by how many users have them in training, most first (ties by index): the
    /// fallback for users with no history at all.
    pub fn popular(&self) -> Vec<tandem_models::Scored> {
        tandem_models::popular_items(&self.history)
    }
}

fn read_ids(path: &Path) -> Result<IdMap> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let mut m = IdMap::new();
    for (n, line) in text.lines().enumerate() {
        if m.get_or_insert(line) as usize != n {
            return Err(ModelDirError::BadManifest {
                path: path.to_path_buf(),
                message: format!("line {}: duplicate id '{line}'", n + 1),
            });
        }
    }
    Ok(m)
}

/// Loads a model directory, refusing other format versions and inconsistent parts.
pub fn load(dir: &Path) -> Result<Loaded> {
    let mpath = dir.join("manifest.json");
    let text = std::fs::read_to_string(&mpath).map_err(|_| ModelDirError::NotAModelDir(dir.to_path_buf()))?;
    let bad = |message: String| ModelDirError::BadManifest { path: mpath.clone(), message };
    let raw: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let version = raw.get("format_version").and_then(|v| v.as_u64());
    if version != Some(FORMAT_VERSION as u64) {
        return Err(bad(format!(
            "model format version {} was written by Tandem {}; this Tandem {} reads version {FORMAT_VERSION} — retrain the model with this version",
            version.map_or("unknown".to_string(), |v| v.to_string()),
            raw.get("tandem_version").and_then(|v| v.as_str()).unwrap_or("unknown"),
            env!("CARGO_PKG_VERSION"),
        )));
    }
    let manifest: Manifest = serde_json::from_value(raw).map_err(|e| bad(format!("malformed manifest: {e}")))?;
    verify(dir, &manifest)?;
    let tensors = read_tensors(&dir.join("tensors.safetensors")).map_err(model_err(dir))?;
    let model = crate::registry::load(&manifest.kind, manifest.params.clone(), &tensors).map_err(model_err(dir))?;
    let history = read_tensors(&dir.join("history.safetensors"))
        .and_then(|t| TensorReader::new(&t, "history").csr("history"))
        .map_err(model_err(dir))?;
    let users = read_ids(&dir.join("users.txt"))?;
    let items = read_ids(&dir.join("items.txt"))?;
    let inconsistent = |message: String| ModelDirError::Inconsistent { dir: dir.to_path_buf(), message };
    let found = fingerprint(&users, &items, &history);
    if found != manifest.data {
        return Err(inconsistent(format!(
            "the id maps and histories do not match the data the model was trained on (fingerprint {} expected, {} found)",
            manifest.data.fingerprint, found.fingerprint
        )));
    }
    if model.n_items() != items.len() {
        return Err(inconsistent(format!(
            "the model scores {} items but items.txt lists {}",
            model.n_items(),
            items.len()
        )));
    }
    let info_path = dir.join("item_info.json");
    let item_info: Vec<ItemInfo> = if info_path.exists() {
        let text = std::fs::read_to_string(&info_path).map_err(io(&info_path))?;
        serde_json::from_str(&text).map_err(|e| ModelDirError::BadManifest {
            path: info_path.clone(),
            message: format!("malformed item metadata: {e}"),
        })?
    } else {
        Vec::new()
    };
    if item_info.len() > items.len() {
        return Err(inconsistent(format!(
            "item_info.json describes {} items but items.txt lists {}",
            item_info.len(),
            items.len()
        )));
    }
    Ok(Loaded { manifest, model, users, items, history, item_info })
}

/// Fails unless `loaded` was trained on data with this fingerprint.
pub fn check_same_data(loaded: &Loaded, users: &IdMap, items: &IdMap, history: &Csr) -> Result<()> {
    let here = fingerprint(users, items, history);
    if here != loaded.manifest.data {
        let (m, d) = (&loaded.manifest, &loaded.manifest.data);
        return Err(ModelDirError::OtherData(format!(
                "model '{}' was trained on other data (fingerprint {}, {} users, {} items, {} interactions); this data has fingerprint {} ({} users, {} items, {} interactions)",
            m.name, d.fingerprint, d.users, d.items, d.interactions, here.fingerprint, here.users, here.items, here.interactions
        )));
    }
    Ok(())
}
