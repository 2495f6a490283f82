//! What rankers save: candidate lists, their heads' layers and their item features, as tensors.

use tandem_models::artifact::{Tensor, TensorData, TensorReader, Tensors};
use tandem_neural::dense::Linear;
use tandem_neural::norm::{BatchNorm, NormMlp};

use super::ScoreStats;
use crate::features::ItemFeatures;

/// Lists of u32 as two tensors: `NAME.offsets` and `NAME.items`.
pub(crate) fn put_lists(t: &mut Tensors, name: &str, lists: &[Vec<u32>]) {
    let mut offsets = vec![0u32];
    for l in lists {
        offsets.push(offsets.last().copied().unwrap_or(0) + l.len() as u32);
    }
    t.insert(format!("{name}.offsets"), Tensor::u32(offsets));
    t.insert(format!("{name}.items"), Tensor::u32(lists.concat()));
}

/// Reads what [`put_lists`] wrote.
pub(crate) fn read_lists(r: &TensorReader<'_>, name: &str) -> tandem_models::Result<Vec<Vec<u32>>> {
    let offsets = r.u32(&format!("{name}.offsets"))?;
    let flat = r.u32(&format!("{name}.items"))?;
    let bad = || tandem_models::ModelError::Artifact { path: name.to_string(), message: "offsets out of range".into() };
    offsets.windows(2).map(|w| flat.get(w[0] as usize..w[1] as usize).map(<[u32]>::to_vec).ok_or_else(bad)).collect()
}

/// Names as one tensor of their UTF-8 bytes, one per line.
pub(crate) fn put_names(t: &mut Tensors, name: &str, names: &[String]) {
    let bytes = names.join("\n").into_bytes();
    t.insert(name.to_string(), Tensor { shape: vec![bytes.len()], data: TensorData::U8(bytes) });
}

/// Reads what [`put_names`] wrote.
pub(crate) fn read_names(r: &TensorReader<'_>, name: &str) -> tandem_models::Result<Vec<String>> {
    let bad = |message: &str| tandem_models::ModelError::Artifact { path: name.to_string(), message: message.into() };
    match r.get(name)? {
        Tensor { data: TensorData::U8(b), .. } => {
            let text = std::str::from_utf8(b).map_err(|_| bad("names are not UTF-8"))?;
            Ok(if text.is_empty() { Vec::new() } else { text.split('\n').map(str::to_string).collect() })
        }
        _ => Err(bad("expected bytes")),
    }
}

/// A ranker head's tensors (`head.L.*`, `head.out.*`).
pub(crate) fn put_head(t: &mut Tensors, head: &NormMlp) {
    for (l, (linear, bn)) in head.hidden.iter().enumerate() {
        let p = |s: &str| format!("head.{l}.{s}");
        t.insert(p("w"), Tensor::matrix(linear.n_in, linear.n_out, linear.w.value.clone()));
        t.insert(p("b"), Tensor::f32(linear.b.value.clone()));
        t.insert(p("gamma"), Tensor::f32(bn.gamma.value.clone()));
        t.insert(p("beta"), Tensor::f32(bn.beta.value.clone()));
        t.insert(p("mean"), Tensor::f32(bn.running_mean.clone()));
        t.insert(p("var"), Tensor::f32(bn.running_var.clone()));
    }
    t.insert("head.out.w".into(), Tensor::f32(head.out.w.value.clone()));
    t.insert("head.out.b".into(), Tensor::f32(head.out.b.value.clone()));
}

/// Reads what [`put_head`] wrote, for hidden widths `hidden`.
pub(crate) fn read_head(r: &TensorReader<'_>, hidden: &[usize], dropout: f32) -> tandem_models::Result<NormMlp> {
    let vec = |name: &str| r.f32(name).map(|(_, v)| v);
    let mut layers = Vec::new();
    let mut n_in = r.matrix("head.0.w")?.rows();
    for (l, &w) in hidden.iter().enumerate() {
        let p = |s: &str| format!("head.{l}.{s}");
        let linear = Linear::from_parts(n_in, w, vec(&p("w"))?, vec(&p("b"))?);
        let bn = BatchNorm::from_parts(vec(&p("gamma"))?, vec(&p("beta"))?, vec(&p("mean"))?, vec(&p("var"))?);
        layers.push((linear, bn));
        n_in = w;
    }
    let out = Linear::from_parts(n_in, 1, vec("head.out.w")?, vec("head.out.b")?);
    Ok(NormMlp::from_parts(layers, out, dropout))
}

/// Item features and score statistics as tensors.
pub(crate) fn put_features(t: &mut Tensors, f: &ItemFeatures, stats: &[ScoreStats]) {
    t.insert("score_stats".into(), Tensor::f32(stats.iter().flat_map(|s| [s.mean, s.std]).collect()));
    t.insert("year_bucket".into(), Tensor::u32(f.year_bucket.clone()));
    t.insert("year_bounds".into(), Tensor::f32(f.year_bounds.iter().map(|&y| y as f32).collect()));
    t.insert("log_pop".into(), Tensor::f32(f.log_pop.clone()));
    t.insert("log_pop_zero".into(), Tensor::f32(vec![f.log_pop_zero]));
    t.insert("counts".into(), Tensor::u32(f.counts.clone()));
    put_lists(t, "genres", &f.genres);
    // Genre ids index per-genre tables; only their number matters after training.
    t.insert("n_genres".into(), Tensor::u32(vec![f.genre_names.len() as u32]));
}

/// Reads what [`put_features`] wrote.
pub(crate) fn read_features(r: &TensorReader<'_>) -> tandem_models::Result<(ItemFeatures, Vec<ScoreStats>)> {
    let vec = |name: &str| r.f32(name).map(|(_, v)| v);
    let stats = vec("score_stats")?.chunks_exact(2).map(|p| ScoreStats { mean: p[0], std: p[1] }).collect();
    let features = ItemFeatures {
        year_bucket: r.u32("year_bucket")?,
        year_bounds: vec("year_bounds")?.iter().map(|&y| y as i32).collect(),
        genres: read_lists(r, "genres")?,
        genre_names: (0..r.u32("n_genres")?.first().copied().unwrap_or(0)).map(|g| format!("genre {g}")).collect(),
        log_pop: vec("log_pop")?,
        log_pop_zero: vec("log_pop_zero")?.first().copied().unwrap_or(0.0),
        counts: r.u32("counts")?,
        // Only the GBDT ranker reads groups, from its own tensors.
        groups: Vec::new(),
    };
    Ok((features, stats))
}
