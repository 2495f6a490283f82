//! The course format: `UserId,ItemId` with space-separated item lists.
#![no_main]
#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use tandem_data::{NoProgress, Source};

fuzz_target!(|data: &[u8]| {
    let d = common::dir();
    let path = d.path().join("train.csv");
    std::fs::write(&path, data).unwrap();
    let source: Source = serde_json::from_value(json!({"format": "course", "path": path})).expect("the harness's spec");
    let _ = source.load(&NoProgress);
});
