//! YAML configs (`tandem run`): parsing, `--set` overrides, validation.
#![no_main]
#[path = "common.rs"]
mod common;
#[allow(dead_code, unused_imports)]
#[path = "../../crates/tandem-cli/src/config.rs"]
mod config;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let d = common::dir();
    let path = d.path().join("config.yaml");
    // The first line, when it starts with `#set `, is an override (`key.path=value`).
    let (overrides, text) = match data.strip_prefix(b"#set ") {
        Some(rest) => {
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            (vec![String::from_utf8_lossy(&rest[..end]).into_owned()], &rest[end.min(rest.len())..])
        }
        None => (Vec::new(), data),
    };
    std::fs::write(&path, text).unwrap();
    let _ = config::Config::load(&path, &overrides);
});
