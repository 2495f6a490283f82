//! Model directories: `manifest.json`, `tensors.safetensors`, `history.safetensors`,
//! `users.txt`, `items.txt`, `item_info.json`. The manifest's checksums are dropped before
//! loading, so that mutated files reach the parsers behind the checksum check.
#![no_main]
#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

const FILES: [&str; 6] =
    ["manifest.json", "tensors.safetensors", "history.safetensors", "users.txt", "items.txt", "item_info.json"];

fuzz_target!(|data: &[u8]| {
    let d = common::dir();
    common::write_parts(data, d.path(), &FILES);
    let manifest = d.path().join("manifest.json");
    if let Ok(text) = std::fs::read(&manifest) {
        if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&text) {
            if let Some(m) = value.as_object_mut() {
                m.remove("checksums");
            }
            std::fs::write(&manifest, value.to_string()).unwrap();
        }
    }
    let _ = tandem_rank::model_dir::load(d.path());
});
