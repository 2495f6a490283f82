//! Model directories written in an earlier release keep loading and scoring as they did; other
//! format versions are refused with a message that says what to do.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tandem_models::Histories;
use tandem_rank::model_dir;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-1")
}

#[test]
fn format_1_directories_load_and_score_as_when_saved() {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("expected.json")).unwrap()).unwrap();
    let models = expected.as_object().unwrap();
    assert_eq!(models.len(), 3);
    for (name, want) in models {
        let m = model_dir::load(&fixture().join("models").join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&m.manifest.kind, name);
        let user = m.users.get(want["user"].as_str().unwrap()).unwrap();
        let mut scores = vec![0f32; m.model.n_items()];
        m.model.score(&Histories::fitted(&m.history).query(user), &mut scores);
        for (item, score) in want["scores"].as_object().unwrap() {
            let got = scores[m.items.get(item).unwrap() as usize];
            let score = score.as_f64().unwrap() as f32;
            assert!((got - score).abs() <= 1e-4 * score.abs().max(1.0), "{name} {item}: {got} vs {score} when saved");
        }
    }
}

#[test]
fn another_format_version_is_refused_with_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let src = fixture().join("models/als");
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, d.path().join(f.file_name().unwrap())).unwrap();
    }
    let path = d.path().join("manifest.json");
    let mut manifest: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    manifest["format_version"] = 2.into();
    std::fs::write(&path, manifest.to_string()).unwrap();
    let e = model_dir::load(d.path()).err().expect("refused").to_string();
    assert!(e.contains("format version 2") && e.contains("retrain"), "{e}");
}

/// A saved directory carries each file's checksum; a truncated or altered file is refused
/// by name at load (not a panic, not a silently different model), and an untouched one loads.
#[test]
fn damaged_files_are_named_at_load() {
    let d = tempfile::tempdir().unwrap();
    let saved = model_dir::load(&fixture().join("models/als")).unwrap();
    let parts = model_dir::DataParts {
        users: &saved.users,
        items: &saved.items,
        history: &saved.history,
        item_info: &saved.item_info,
    };
    model_dir::save(d.path(), "als", &*saved.model, &parts).unwrap();
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("manifest.json")).unwrap()).unwrap();
    let sums = manifest["checksums"].as_object().expect("checksums in the manifest");
    for file in ["tensors.safetensors", "history.safetensors", "users.txt", "items.txt"] {
        assert!(sums[file].as_str().is_some_and(|s| s.len() == 8), "{file}: {sums:?}");
    }
    model_dir::load(d.path()).expect("an untouched directory loads");
    let tensors = d.path().join("tensors.safetensors");
    let bytes = std::fs::read(&tensors).unwrap();
    // One flipped bit deep in the factors: the safetensors header still parses.
    let mut altered = bytes.clone();
    let at = altered.len() - 5;
    altered[at] ^= 0x10;
    std::fs::write(&tensors, &altered).unwrap();
    let e = model_dir::load(d.path()).err().expect("an altered file is refused").to_string();
    assert!(e.contains("tensors.safetensors is damaged") && e.contains("CRC32C"), "{e}");
    std::fs::write(&tensors, &bytes[..bytes.len() / 2]).unwrap();
    let e = model_dir::load(d.path()).err().expect("a truncated file is refused").to_string();
    assert!(e.contains("tensors.safetensors is damaged"), "{e}");
    std::fs::write(&tensors, &bytes).unwrap();
    std::fs::remove_file(d.path().join("users.txt")).unwrap();
    let e = model_dir::load(d.path()).err().expect("a missing file is refused").to_string();
    assert!(e.contains("users.txt"), "{e}");
}
