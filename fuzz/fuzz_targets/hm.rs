//! The H&M layout: `transactions_train.csv`, `articles.csv`, `customers.csv`.
#![no_main]
#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use tandem_data::{NoProgress, Source};

fuzz_target!(|data: &[u8]| {
    let d = common::dir();
    common::write_parts(data, d.path(), &["transactions_train.csv", "articles.csv", "customers.csv"]);
    let source: Source = serde_json::from_value(json!({"format": "hm", "path": d.path()})).expect("the harness's spec");
    let _ = source.load(&NoProgress);
});
