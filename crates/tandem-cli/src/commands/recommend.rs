//! `tandem recommend --model DIR --user ID`: recommendations from a saved model.

use std::path::Path;

use anyhow::{Context, Result};
use tandem_models::{recommend_or_popular, Histories, Query};

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
        // A user without training rows is a new user: no trained state to use.
        let q = Histories::fitted(&m.history).query(u);
        history.extend_from_slice(q.items);
        weights.extend_from_slice(q.weights);
        known_user = q.trained;
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
    let q = Query { trained: if items.is_empty() { known_user } else { None }, items: &history, weights: &weights };
    let keep = |i: u32| include_seen || !history.contains(&i);
    let (recs, fallback) = recommend_or_popular(&*m.model, &m.popular(), &q, k, &keep);
    if fallback {
        eprintln!("no history for this user: popular items");
    }
    println!("rank\titem\tscore");
    for (r, s) in recs.iter().enumerate() {
        println!("{}\t{}\t{}", r + 1, m.items.raw(s.item), s.score);
    }
    Ok(())
}
