//! Split directories: `train.tsv`, `valid.tsv`, `test.tsv`, `test_negatives.tsv`, then item
//! metadata (`u.item`) read onto the split.
#![no_main]
#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use tandem_data::{NoProgress, SplitDir};

fuzz_target!(|data: &[u8]| {
    let d = common::dir();
    common::write_parts(data, d.path(), &["train.tsv", "valid.tsv", "test.tsv", "test_negatives.tsv", "u.item"]);
    if let Ok(mut split) = SplitDir::load(d.path(), &NoProgress) {
        let items = d.path().join("u.item");
        if items.exists() {
            let _ = split.read_item_metadata(&items, &NoProgress);
        }
    }
});
