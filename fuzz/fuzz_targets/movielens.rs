//! The MovieLens source in each layout it detects: the first byte picks ml-100k (`u.data` +
//! `u.item`), ml-1m (`ratings.dat` + `movies.dat`), ml-20m (`ratings.csv` + `movies.csv`) or
//! RecBole atomic files (`x.inter` + `x.item`); the rest is the two files.
#![no_main]
#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use tandem_data::{NoProgress, Source};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, files)) = data.split_first() else { return };
    let d = common::dir();
    let names: [&str; 2] = match pick % 4 {
        0 => ["u.data", "u.item"],
        1 => ["ratings.dat", "movies.dat"],
        2 => ["ratings.csv", "movies.csv"],
        _ => ["x.inter", "x.item"],
    };
    common::write_parts(files, d.path(), &names);
    let skip = if pick & 4 != 0 { "skip" } else { "error" };
    let source: Source =
        serde_json::from_value(json!({"format": "movielens", "path": d.path(), "on_bad_row": skip})).expect("the harness's spec");
    let _ = source.load(&NoProgress);
});
