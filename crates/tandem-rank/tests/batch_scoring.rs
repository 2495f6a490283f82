//! The batch paths (blocked products with fused top-k, shared lists, sparse kNN) give exactly
//! the per-user path's scores and lists on ml-100k, for every kind that has its own batch code
//! and a few that use the defaults.

use std::path::Path;

use serde_json::json;
use tandem_data::read::SplitDir;
use tandem_data::NoProgress;
use tandem_models::testing::batch_matches_single;
use tandem_models::{Histories, TrainSet};
use tandem_rank::registry::Spec;

#[test]
fn batches_equal_the_per_user_path_on_ml_100k() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/ml-100k/splits/temporal");
    if !dir.exists() {
        assert!(std::env::var_os("TANDEM_SKIP_SHARED_DATA").is_some(), "{} not found", dir.display());
        return;
    }
    let split = SplitDir::load(&dir, &NoProgress).unwrap();
    let train = TrainSet::new(split.train.clone(), split.dataset.n_users(), split.dataset.n_items());
    // Users with test rows but none in training are new users: folded in from their history.
    let histories = Histories::fitted(&train.user_items);
    let queries: Vec<_> = (0..train.n_users() as u32).map(|u| histories.query(u)).collect();
    for spec in [
        json!({"kind": "als", "iterations": 3}),
        json!({"kind": "mf", "epochs": 2}),
        json!({"kind": "two_tower", "epochs": 1, "embedding": 16, "layers": []}),
        json!({"kind": "popularity"}),
        json!({"kind": "item_knn"}),
        json!({"kind": "ease"}),
    ] {
        let model = Spec::from_json(spec.clone()).unwrap().fit(&train, split.dataset.side(), &NoProgress).unwrap();
        for k in [12, 100] {
            batch_matches_single(&*model, &queries, k);
        }
    }
}
