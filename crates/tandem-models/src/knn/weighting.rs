//! Row weighting for neighbourhood models, as in `implicit`: cosine (L2-normalised rows),
//! TF-IDF and BM25, treating rows as documents and columns as terms.

use serde::{Deserialize, Serialize};
use tandem_data::Csr;

/// How interaction vectors are weighted before similarities are taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Weighting {
    /// Raw values, plain dot products (co-occurrence counts for binary data).
    None,
    /// L2-normalised rows: cosine similarity.
    Cosine,
    /// sqrt(value) * idf(column), idf = ln N - ln(1 + df), then L2-normalised rows.
    Tfidf,
    /// Okapi BM25 with `bm25_k1` and `bm25_b` (the default).
    #[default]
    Bm25,
}

fn l2_normalise(vals: &mut [f32]) {
    let norm = vals.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        vals.iter_mut().for_each(|v| *v /= norm);
    }
}

/// Statistics that weight any row the same way as the fitted matrix.
#[derive(Debug, Clone)]
pub(crate) struct Weigher {
    scheme: Weighting,
    idf: Vec<f32>,
    avg_len: f32,
    k1: f32,
    b: f32,
}

impl Weigher {
    /// Learns column statistics from `m` (rows are documents).
    pub(crate) fn fit(m: &Csr, scheme: Weighting, k1: f32, b: f32) -> Self {
        let n = m.n_rows() as f64;
        let mut df = vec![0u32; m.n_cols()];
        for &c in m.indices() {
            df[c as usize] += 1;
        }
        let idf = df.iter().map(|&d| (n.ln() - (1.0 + d as f64).ln()) as f32).collect();
        let total: f64 = m.data().iter().map(|&v| v as f64).sum();
        let avg_len = (total / n.max(1.0)) as f32;
        Weigher { scheme, idf, avg_len, k1, b }
    }

    /// Weights one row in place.
    pub(crate) fn weigh(&self, cols: &[u32], vals: &mut [f32]) {
        match self.scheme {
            Weighting::None => {}
            Weighting::Cosine => l2_normalise(vals),
            Weighting::Tfidf => {
                for (v, &c) in vals.iter_mut().zip(cols) {
                    *v = v.sqrt() * self.idf.get(c as usize).copied().unwrap_or(0.0);
                }
                l2_normalise(vals);
            }
            Weighting::Bm25 => {
                let len: f32 = vals.iter().sum();
                let norm = (1.0 - self.b) + self.b * len / self.avg_len.max(f32::MIN_POSITIVE);
                for (v, &c) in vals.iter_mut().zip(cols) {
                    let idf = self.idf.get(c as usize).copied().unwrap_or(0.0);
                    *v = *v * (self.k1 + 1.0) / (self.k1 * norm + *v) * idf;
                }
            }
        }
    }

    /// Weights every row of `m`.
    pub(crate) fn weigh_matrix(&self, m: &Csr) -> Csr {
        let mut data = m.data().to_vec();
        for r in 0..m.n_rows() {
            let (a, b) = (m.indptr()[r], m.indptr()[r + 1]);
            self.weigh(&m.indices()[a..b], &mut data[a..b]);
        }
        m.with_values(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bm25_matches_a_hand_computed_case() {
        // 4 documents (rows): doc 0 holds term 0 twice; docs 1-3 hold term 1 once.
        let m = Csr::from_triplets(4, 2, &[0, 1, 2, 3], &[0, 1, 1, 1], &[2.0, 1.0, 1.0, 1.0]);
        let w = Weigher::fit(&m, Weighting::Bm25, 100.0, 0.8).weigh_matrix(&m);
        // idf(term 0) = ln 4 - ln 2; avg length 1.25; norm(doc 0) = 0.2 + 0.8 * 2 / 1.25 = 1.48.
        let want0 = 2.0 * 101.0 / (100.0 * 1.48 + 2.0) * (4f64.ln() - 2f64.ln());
        assert!((w.data()[0] as f64 - want0).abs() < 1e-5, "{} vs {want0}", w.data()[0]);
        // idf(term 1) = ln 4 - ln 4 = 0.
        assert!(w.data()[1].abs() < 1e-6);
        // TF-IDF: sqrt(2) * ln 2 for doc 0's only term, then L2-normalised to 1.
        let t = Weigher::fit(&m, Weighting::Tfidf, 0.0, 0.0).weigh_matrix(&m);
        assert!((t.data()[0] - 1.0).abs() < 1e-6);
        let m2 = Csr::from_triplets(4, 2, &[0, 0, 1, 2], &[0, 1, 1, 1], &[2.0, 1.0, 1.0, 1.0]);
        let t = Weigher::fit(&m2, Weighting::Tfidf, 0.0, 0.0).weigh_matrix(&m2);
        // doc 0: term 0 -> sqrt(2) ln(4/2), term 1 -> 1 * ln(4/4) = 0; normalised: [1, 0].
        assert!((t.data()[0] - 1.0).abs() < 1e-6 && t.data()[1].abs() < 1e-6);
    }

    #[test]
    fn cosine_normalises_rows() {
        let m = Csr::from_triplets(1, 2, &[0, 0], &[0, 1], &[3.0, 4.0]);
        let w = Weigher::fit(&m, Weighting::Cosine, 0.0, 0.0).weigh_matrix(&m);
        assert_eq!(w.data(), &[0.6, 0.8]);
    }
}
