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
