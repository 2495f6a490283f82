//! `tandem recommend --model DIR --user ID`: recommendations from a saved model.

use std::path::Path;

use anyhow::{Context, Result};
use tandem_models::Query;

use tandem_rank::model_dir::load;

/// Prints the top `k` items for `user` (raw id), or for an anonymous history of raw item ids.
pub fn recommend(dir: &Path, user: Option<&str>, items: &[String], k: usize, include_seen: bool) -> Result<()> {
    let m = load(dir)?;
    let mut history: Vec<u32> = Vec::new();
    let mut weights: Vec<f32> = Vec::new();
    let mut known_user = None;
    if let Some(raw) = user {
        let u = m
            .users
            .get(raw)
            .with_context(|| format!("unknown user '{raw}' (the model knows {} users)", m.users.len()))?;
        let (i, w) = m.history.row(u as usize);
        history.extend_from_slice(i);
        weights.extend_from_slice(w);
        known_user = Some(u);
    }
    for raw in items {
        let i = m
            .items
            .get(raw)
            .with_context(|| format!("unknown item '{raw}' (the model knows {} items)", m.items.len()))?;
        history.push(i);
        weights.push(1.0);
    }
    // Extra items make this a new history: score it as an anonymous one.
    let q = Query { user: if items.is_empty() { known_user } else { None }, items: &history, weights: &weights };
    let recs = m.model.recommend(&q, k, &|i| include_seen || !history.contains(&i));
    println!("rank\titem\tscore");
    for (r, s) in recs.iter().enumerate() {
        println!("{}\t{}\t{}", r + 1, m.items.raw(s.item), s.score);
    }
    Ok(())
}
