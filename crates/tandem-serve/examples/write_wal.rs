//! Writes a small interaction log in the current record format (a fuzzing seed):
//! `cargo run -p tandem-serve --example write_wal -- PATH`.

use tandem_serve::wal::{Event, Wal, WalOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: write_wal PATH")?;
    let (wal, _) = Wal::open(std::path::Path::new(&path), WalOptions::default())?;
    for (k, (user, item)) in [("a", "x"), ("b", "y"), ("a", "z")].into_iter().enumerate() {
        wal.append(&[Event { user: user.into(), item: item.into(), weight: 1.0, time: k as i64 }])?;
    }
    Ok(())
}
