//! Trains the GBDT ranker's engine on matrices a fit exported (`TANDEM_GBDT_EXPORT=DIR`):
//! `cargo bench -p tandem-rank --bench gbdt_train -- DIR TREES [PARAMS_JSON]`. Grows exactly
//! TREES trees on `train.*` with the ranker's parameters (JSON of `ranker: {kind: gbdt}` keys),
//! prints the seconds training took, and writes the margins of `valid.*` to
//! `DIR/tandem.pred.f32`: what bench/gbdt_vs_lightgbm.sh sets beside LightGBM on the same rows.

use std::path::Path;
use std::time::Instant;

use hessboost::data::DMatrix;
use hessboost::model::Iterations;
use hessboost::training::Trainer;
use tandem_rank::GbdtParams;

fn floats(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn sizes(path: &Path) -> Vec<usize> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let (Some(dir), Some(trees)) = (args.first(), args.get(1).and_then(|t| t.parse::<usize>().ok())) else {
        eprintln!("usage: gbdt_train DIR TREES [PARAMS_JSON]");
        std::process::exit(2);
    };
    let dir = Path::new(dir);
    let params: GbdtParams = match args.get(2) {
        Some(json) => serde_json::from_str(json).expect("ranker parameters as JSON"),
        None => GbdtParams::default(),
    };
    let width = std::fs::read_to_string(dir.join("features.txt")).expect("features.txt").lines().count();
    let labels = floats(&dir.join("train.labels.f32"));
    let dtrain = DMatrix::from_dense_vec(floats(&dir.join("train.rows.f32")), labels.len(), width)
        .and_then(|m| m.with_labels(&labels))
        .and_then(|m| m.with_group_sizes(&sizes(&dir.join("train.groups.u32"))))
        .expect("the exported matrix");
    let engine = params.engine_params(rayon::current_num_threads()).expect("engine parameters");
    let started = Instant::now();
    let model = Trainer::new(&engine, &dtrain, trees).train().expect("training").model;
    let seconds = started.elapsed().as_secs_f64();
    let valid = floats(&dir.join("valid.rows.f32"));
    let margins = model.predict_margin_rows(&valid, Iterations::Best).expect("prediction");
    let bytes: Vec<u8> = margins.as_slice().iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.join("tandem.pred.f32"), bytes).expect("write predictions");
    println!("{seconds:.3}");
}
