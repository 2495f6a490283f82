//! The LambdaRank (NDCG) gradients, written for recommendation lists. The tree engine's own
//! `rank:ndcg` visits every pair of the top-k × list and spent 70% of a ranker fit there
//! (perf, Online Retail rows: 1.1 of 1.6 s); candidate lists hold one or two positives among a
//! hundred candidates, so nearly every visited pair has equal labels and is skipped. This loss
//! computes the same pairs — XGBoost's `topk` method: each of the top `k` ranked candidates
//! with every one below it, unequal labels only — by walking, for each label level, only the
//! rows of other levels, and gives the engine's values: pair weight |ΔNDCG| / (0.01 + |score
//! gap|) (unless the list's scores are all equal), lambda (σ − 1)·w, hessian 2σ(1 − σ)·w, a
//! list's pairs scaled by log2(1 + Σλ)/Σλ. Test `matches_the_engines_rank_ndcg` holds it to the
//! engine's own gradients.

use hessboost::data::{GroupInfo, MetaInfo};
use hessboost::metric::EvalMetric;
use hessboost::objective::{GradPair, Loss};
use rayon::prelude::*;

/// LambdaRank with NDCG-weighted pairs among the top `top_k` of each list.
#[derive(Debug, Clone)]
pub struct NdcgLambdaRank {
    /// Pairs are formed only where the better-ranked member is among this many.
    pub top_k: usize,
    /// The metric the engine reports when none is configured.
    pub metric: EvalMetric,
}

fn gain(label: f32) -> f64 {
    (label.max(0.0) as f64).exp2() - 1.0
}

/// The engine's bound on a pair's σ(1 − σ).
const MIN_HESS: f32 = 1e-16;

/// e^x in f32 for x ≤ 88 (Cephes' expf polynomial after x = n·ln 2 + r): a plain-arithmetic
/// form the compiler vectorizes, within 2 ulp of libm's.
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // n = round(x / ln 2) by the 1.5·2^23 trick: t's low mantissa bits hold n as an integer,
    // so 2^n is built from bits alone (no float-to-int cast, which blocks vectorizing).
    const SHIFT: f32 = 12_582_912.0;
    let t = x * std::f32::consts::LOG2_E + SHIFT;
    let n = t - SHIFT;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_2e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    let exponent = t.to_bits().wrapping_sub(SHIFT.to_bits()).wrapping_add(127) << 23;
    y * f32::from_bits(exponent)
}

/// One level's candidates of a list, in rank order.
#[derive(Default)]
struct Level {
    label: f32,
    ranks: Vec<usize>,
    scores: Vec<f32>,
    discounts: Vec<f32>,
    grad: Vec<f32>,
    hess: Vec<f32>,
}

/// λ and hessian of one pair: the fixed candidate (score `fs`, discount `fd`) and another
/// (`os`, `od`); `HIGH`: the fixed one has the better label. `w`: |Δgain| / ideal DCG;
/// `spread`: the list's scores differ.
#[inline(always)]
fn pair<const HIGH: bool>(fs: f32, fd: f32, w: f32, spread: bool, os: f32, od: f32) -> (f32, f32) {
    let diff = if HIGH { fs - os } else { os - fs };
    let sigmoid = 1.0 / (exp(-diff) + 1.0);
    let gap = if spread { diff.abs() + 0.01 } else { 1.0 };
    let delta = w * (fd - od).abs() / gap;
    let curvature = sigmoid * (1.0 - sigmoid);
    let curvature = if curvature > MIN_HESS { curvature } else { MIN_HESS };
    ((sigmoid - 1.0) * delta, curvature * delta * 2.0)
}

/// The pairs of one candidate with `os`/`od`, the candidates of another level ranked below it.
/// The better-labelled member of a pair gets +λ, the other −λ; adds the others' into `og`/`oh`
/// and returns the fixed one's gradient and hessian and the pairs' Σλ. `lambdas` and
/// `hessians` are scratch.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn pairs<const HIGH: bool>(
    fs: f32,
    fd: f32,
    w: f32,
    spread: bool,
    os: &[f32],
    od: &[f32],
    og: &mut [f32],
    oh: &mut [f32],
    lambdas: &mut Vec<f32>,
    hessians: &mut Vec<f32>,
) -> (f32, f32, f32) {
    let sign = if HIGH { 1.0 } else { -1.0 };
    lambdas.resize(os.len(), 0.0);
    hessians.resize(os.len(), 0.0);
    // An element-wise loop first (it vectorizes), the in-order float sums after.
    for ((((&o, &d), g), h), (l, e)) in
        os.iter().zip(od).zip(og.iter_mut()).zip(oh.iter_mut()).zip(lambdas.iter_mut().zip(hessians.iter_mut()))
    {
        let (lambda, hessian) = pair::<HIGH>(fs, fd, w, spread, o, d);
        *g -= sign * lambda;
        *h += hessian;
        (*l, *e) = (lambda, hessian);
    }
    let s: f32 = lambdas.iter().sum();
    (sign * s, hessians.iter().sum(), -2.0 * s)
}

/// The pairs whose upper member is a candidate of `fixed` ranked within `top` and whose lower
/// member is in `others`; returns their Σλ.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn side(
    fixed: &mut Level,
    others: &mut Level,
    high: bool,
    w: f32,
    spread: bool,
    top: usize,
    lambdas: &mut Vec<f32>,
    hessians: &mut Vec<f32>,
) -> f64 {
    let mut sum = 0.0f64;
    for at in 0..fixed.ranks.len() {
        let rank = fixed.ranks[at];
        if rank >= top {
            break;
        }
        let from = others.ranks.partition_point(|&r| r < rank);
        let (fs, fd) = (fixed.scores[at], fixed.discounts[at]);
        let (os, od) = (&others.scores[from..], &others.discounts[from..]);
        let (og, oh) = (&mut others.grad[from..], &mut others.hess[from..]);
        let (g, h, s) = if high {
            pairs::<true>(fs, fd, w, spread, os, od, og, oh, lambdas, hessians)
        } else {
            pairs::<false>(fs, fd, w, spread, os, od, og, oh, lambdas, hessians)
        };
        fixed.grad[at] += g;
        fixed.hess[at] += h;
        sum += f64::from(s);
    }
    sum
}

/// What one list's gradients need beyond its rows, kept between the lists a thread handles.
#[derive(Default)]
struct Scratch {
    keys: Vec<u64>,
    levels: Vec<Level>,
    lambdas: Vec<f32>,
    hessians: Vec<f32>,
}

/// A key whose ascending order is descending `score` (IEEE total order), ties by `row`.
fn rank_key(score: f32, row: usize) -> u64 {
    let bits = score.to_bits();
    let ascending = if bits >> 31 == 1 { !bits } else { bits | 0x8000_0000 };
    (u64::from(!ascending) << 32) | row as u64
}

impl NdcgLambdaRank {
    /// The gradients of one list: `p` its scores, `y` its labels, `out` its rows; `discounts`
    /// 1/log2(2 + rank) for every rank of the longest list.
    fn list(&self, p: &[f32], y: &[f32], discounts: &[f64], scratch: &mut Scratch, out: &mut [GradPair]) {
        out.fill(GradPair::default());
        let n = p.len();
        if n < 2 {
            return;
        }
        // Rank order: score descending, ties in row order (the engine's stable sort).
        let keys = &mut scratch.keys;
        keys.clear();
        keys.extend(p.iter().enumerate().map(|(row, &s)| rank_key(s, row)));
        keys.sort_unstable();
        let levels = &mut scratch.levels;
        let mut used = 0;
        for (rank, &key) in keys.iter().enumerate() {
            let row = (key & 0xffff_ffff) as usize;
            let label = y[row];
            let at = match levels[..used].iter().position(|l| l.label == label) {
                Some(at) => at,
                None => {
                    if used == levels.len() {
                        levels.push(Level::default());
                    }
                    let l = &mut levels[used];
                    l.label = label;
                    for v in [&mut l.scores, &mut l.discounts, &mut l.grad, &mut l.hess] {
                        v.clear();
                    }
                    l.ranks.clear();
                    used += 1;
                    used - 1
                }
            };
            let l = &mut levels[at];
            l.ranks.push(rank);
            l.scores.push(p[row]);
            l.discounts.push(discounts[rank] as f32);
            l.grad.push(0.0);
            l.hess.push(0.0);
        }
        let levels = &mut levels[..used];
        if levels.len() < 2 {
            return;
        }
        // Ideal DCG at top_k: the levels by gain, each filling as many places as it has rows.
        let mut by_gain: Vec<(f64, usize)> = levels.iter().map(|l| (gain(l.label), l.ranks.len())).collect();
        by_gain.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (mut idcg, mut place) = (0.0, 0);
        for (g, count) in by_gain {
            let end = (place + count).min(self.top_k).min(n);
            idcg += g * discounts[place.min(end)..end].iter().sum::<f64>();
            place = end;
        }
        if idcg == 0.0 {
            return;
        }
        let spread = keys[0] >> 32 != keys[n - 1] >> 32;
        let top = n.min(self.top_k);
        let mut sum_lambda = 0.0f64;
        for a in 0..levels.len() {
            let (head, tail) = levels.split_at_mut(a + 1);
            let la = &mut head[a];
            for lb in tail {
                let w = ((gain(la.label) - gain(lb.label)).abs() / idcg) as f32;
                let a_high = la.label > lb.label;
                let (l, h) = (&mut scratch.lambdas, &mut scratch.hessians);
                sum_lambda += side(la, lb, a_high, w, spread, top, l, h);
                sum_lambda += side(lb, la, !a_high, w, spread, top, l, h);
            }
        }
        let norm = if sum_lambda > 0.0 { ((1.0 + sum_lambda).log2() / sum_lambda) as f32 } else { 1.0 };
        for l in levels.iter() {
            for ((&r, &g), &h) in l.ranks.iter().zip(&l.grad).zip(&l.hess) {
                out[(keys[r] & 0xffff_ffff) as usize] = GradPair::new(g * norm, h * norm);
            }
        }
    }
}

/// The loss's name in saved models (the engine refuses a built-in objective's name for a
/// custom loss).
pub(crate) const NAME: &str = "tandem:lambdarank_ndcg";

impl Loss for NdcgLambdaRank {
    fn name(&self) -> &str {
        NAME
    }

    fn gradient(&self, preds: &[f32], labels: &[f32], weights: Option<&[f32]>, out: &mut [GradPair]) {
        self.gradient_grouped(preds, labels, weights, None, out);
    }

    fn gradient_grouped(
        &self,
        preds: &[f32],
        labels: &[f32],
        _weights: Option<&[f32]>,
        group: Option<&GroupInfo>,
        out: &mut [GradPair],
    ) {
        let whole = [0, preds.len()];
        let bounds = group.map_or(&whole[..], |g| &g.group_ptr[..]);
        // Each list's rows are a disjoint slice of `out`.
        let mut slices = Vec::with_capacity(bounds.len().saturating_sub(1));
        let mut rest = out;
        for w in bounds.windows(2) {
            let (head, tail) = rest.split_at_mut(w[1] - w[0]);
            slices.push((w[0], head));
            rest = tail;
        }
        let longest = slices.iter().map(|(_, o)| o.len()).max().unwrap_or(0);
        let discounts: Vec<f64> = (0..longest).map(|r| 1.0 / ((r + 2) as f64).log2()).collect();
        slices.into_par_iter().with_min_len(16).for_each_init(Scratch::default, |scratch, (start, o)| {
            let end = start + o.len();
            self.list(&preds[start..end], &labels[start..end], &discounts, scratch, o);
        });
    }

    /// Ranking is shift-invariant: start every row at margin 0.
    fn base_margins_info(&self, _info: &MetaInfo) -> Vec<f32> {
        vec![0.0]
    }

    fn default_metric(&self) -> EvalMetric {
        self.metric.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hessboost::config::TrainingParams;
    use hessboost::data::DMatrix;
    use hessboost::metric::Cutoff;
    use hessboost::model::Iterations;
    use hessboost::objective::{LambdaRank, Objective};
    use hessboost::training::Trainer;

    fn grads(loss: &dyn Loss, preds: &[f32], labels: &[f32], sizes: &[usize]) -> Vec<GradPair> {
        let mut out = vec![GradPair::default(); preds.len()];
        loss.gradient_grouped(preds, labels, None, Some(&GroupInfo::from_sizes(sizes)), &mut out);
        out
    }

    /// Lists of 1..=90 rows with 0-3 relevance levels (one list's scores all tied at first),
    /// top_k 1, 5 and 32: trees grown from these gradients predict what the engine's own
    /// `rank:ndcg` trees predict (the engine keeps its loss private; its model is the witness).
    #[test]
    fn trains_the_model_the_engines_rank_ndcg_trains() {
        let mut state = 7u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        let sizes: Vec<usize> = (0..60).map(|g| 1 + (g * 37) % 90).collect();
        let n: usize = sizes.iter().sum();
        let width = 3;
        let rows: Vec<f32> = (0..n * width).map(|_| (next() % 1000) as f32 / 1000.0).collect();
        let labels: Vec<f32> = (0..n)
            .map(|r| {
                let signal = rows[r * width] + 0.5 * rows[r * width + 1];
                if signal + (next() % 100) as f32 / 200.0 > 1.3 {
                    (next() % 3 + 1) as f32
                } else {
                    0.0
                }
            })
            .collect();
        let data = DMatrix::from_dense_vec(rows.clone(), n, width)
            .and_then(|m| m.with_labels(&labels))
            .and_then(|m| m.with_group_sizes(&sizes))
            .unwrap();
        for top_k in [1, 5, 32] {
            let predict = |objective: Objective| {
                let mut p = TrainingParams::default();
                p.objective = objective;
                p.base_score = Some(0.0);
                p.nthread = std::num::NonZeroUsize::new(1);
                let model = Trainer::new(&p, &data, 5).train().unwrap().model;
                model.predict_margin_rows(&rows, Iterations::Best).unwrap().as_slice().to_vec()
            };
            let metric = EvalMetric::Ndcg(hessboost::metric::Cutoff::all());
            let ours = predict(Objective::custom(NdcgLambdaRank { top_k, metric }));
            let engine = predict(Objective::RankNdcg(LambdaRank::new(top_k).unwrap()));
            for (row, (a, b)) in ours.iter().zip(&engine).enumerate() {
                assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "top {top_k}, row {row}: {a} vs {b}");
            }
            assert!(ours.iter().any(|&m| m != ours[0]), "the trees split");
        }
        // Such a model exports as XGBoost JSON under XGBoost's name for the objective.
        let mut p = TrainingParams::default();
        p.objective = Objective::custom(NdcgLambdaRank { top_k: 30, metric: EvalMetric::Ndcg(Cutoff::all()) });
        let model = Trainer::new(&p, &data, 3).train().unwrap().model;
        let json = String::from_utf8(crate::gbdt::export_xgboost(&model).unwrap()).unwrap();
        assert!(json.contains("\"rank:ndcg\"") && !json.contains(NAME), "{}", &json[..json.len().min(400)]);
    }

    #[test]
    fn lists_without_two_levels_or_of_one_row_get_no_gradient() {
        let loss = NdcgLambdaRank { top_k: 30, metric: EvalMetric::Ndcg(hessboost::metric::Cutoff::all()) };
        let out = grads(&loss, &[0.1, 0.2, 0.3, 0.4], &[0.0, 0.0, 0.0, 1.0], &[3, 1]);
        assert!(out.iter().all(|g| g.grad == 0.0 && g.hess == 0.0), "{out:?}");
    }

    /// Labels [0, 1, 0] scored [0.5, 0, −0.5], top 30: the positive (rank 1) pairs with rank 0
    /// and rank 2; hand-computed with the engine's formulas.
    #[test]
    fn one_list_matches_the_hand_computed_lambdas() {
        let loss = NdcgLambdaRank { top_k: 30, metric: EvalMetric::Ndcg(hessboost::metric::Cutoff::all()) };
        let out = grads(&loss, &[0.5, 0.0, -0.5], &[0.0, 1.0, 0.0], &[3]);
        let d = |r: usize| 1.0 / ((r + 2) as f64).log2();
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        // (high, low) = (rank 1, rank 0): gap −0.5; (rank 1, rank 2): gap 0.5. Ideal DCG 1.
        let (wa, wb) = ((d(0) - d(1)) / 0.51, (d(1) - d(2)) / 0.51);
        let (la, lb) = ((sig(-0.5) - 1.0) * wa, (sig(0.5) - 1.0) * wb);
        let (ha, hb) = (sig(-0.5) * (1.0 - sig(-0.5)) * wa * 2.0, sig(0.5) * (1.0 - sig(0.5)) * wb * 2.0);
        let sum = -2.0 * (la + lb);
        let norm = (1.0 + sum).log2() / sum;
        let want = [(-la * norm, ha * norm), ((la + lb) * norm, (ha + hb) * norm), (-lb * norm, hb * norm)];
        for (got, (g, h)) in out.iter().zip(want) {
            assert!((f64::from(got.grad) - g).abs() < 1e-6 && (f64::from(got.hess) - h).abs() < 1e-6, "{out:?}");
        }
        assert!(out[1].grad < 0.0 && out[0].grad > 0.0 && out[2].grad > 0.0, "the positive is pushed up");
    }
}
