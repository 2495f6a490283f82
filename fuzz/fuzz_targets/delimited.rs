//! Delimited logs through a column mapping (the `delimited` source): the first byte picks a
//! mapping (delimiter, header, time format, weight and filter columns), the rest is the file.
#![no_main]
#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use tandem_data::{NoProgress, Source};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, file)) = data.split_first() else { return };
    let d = common::dir();
    let path = d.path().join("log.csv");
    std::fs::write(&path, file).unwrap();
    let (delimiter, header) = if pick & 1 == 0 { (",", true) } else { ("\t", false) };
    let columns = if header {
        json!({"user": "user", "item": "item", "time": "time", "weight": "weight"})
    } else {
        json!({"user": 0, "item": 1, "time": 2})
    };
    let mut log = json!({"path": path, "delimiter": delimiter, "header": header, "columns": columns});
    if pick & 2 != 0 {
        log["time_format"] = "%Y-%m-%d %H:%M:%S".into();
    }
    if pick & 4 != 0 && header {
        log["filters"] = json!([{"column": "item", "not_starts_with": "C"}, {"column": "weight", "min": 1}]);
    }
    if pick & 8 != 0 {
        log["on_bad_row"] = "skip".into();
    }
    if pick & 16 != 0 {
        log["encoding"] = "latin1".into();
    }
    let source: Source = serde_json::from_value(json!({"format": "delimited", "log": log})).expect("the harness's spec");
    let _ = source.load(&NoProgress);
});
