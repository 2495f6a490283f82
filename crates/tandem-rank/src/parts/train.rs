//! How rankers train: their parameter checks, their losses (weighted BCE, listwise softmax) and
//! their epochs through the training driver.

use std::collections::HashMap;
use std::ops::Bound::{Excluded, Included};

use rand::Rng;
use serde::{Deserialize, Serialize};
use tandem_models::fit::{self, EpochTrainer, Epochs};
use tandem_models::within;
use tandem_models::ModelError;
use tandem_neural::dense::bce_with_logit;

use crate::mining::Example;

/// The bounds both rankers put on their head and schedule.
pub(crate) fn check_head(
    hidden: &[usize],
    dropout: f32,
    epochs: usize,
    batch_size: usize,
    learning_rate: f32,
) -> tandem_models::Result<()> {
    if hidden.is_empty() || hidden.iter().any(|&w| w == 0 || w > 8192) {
        return Err(ModelError::invalid("hidden", hidden, "one or more widths in 1..=8192"));
    }
    within("dropout", dropout, 0.0..1.0)?;
    within("epochs", epochs, 1..=10_000)?;
    within("batch_size", batch_size, 2..=65_536)?; // batch norm needs two rows
    within("learning_rate", learning_rate, (Excluded(0.0), Included(10.0)))
}

/// The weighted BCE of a batch (`logits[j]` for `examples[batch[j]]`): summed weighted loss,
/// total weight, and the logits' gradient of the weighted mean.
pub(crate) fn weighted_bce(examples: &[Example], batch: &[usize], logits: &[f32]) -> (f64, f64, Vec<f32>) {
    let total: f32 = batch.iter().map(|&k| examples[k].weight).sum::<f32>().max(1e-12);
    let mut loss = 0.0;
    let grads = batch
        .iter()
        .zip(logits)
        .map(|(&k, &s)| {
            let e = &examples[k];
            let (l, g) = bce_with_logit(s, e.label);
            loss += (l * e.weight) as f64;
            g * e.weight / total
        })
        .collect();
    (loss, total as f64, grads)
}

/// What a ranker's head is trained to minimise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RankLoss {
    /// Pointwise: weighted BCE of every example on its own (nanoRecSys).
    #[default]
    Bce,
    /// Listwise (ListNet): a softmax over each user's examples, the cross-entropy of its
    /// positives (each weighted, averaged per list) — the order within a user's list is what
    /// the metrics read, and this loss cannot be lowered by moving a whole list up or down.
    /// Negatives' weights do not apply.
    Listwise,
}

impl RankLoss {
    /// What the training driver shuffles and packs into batches: example indices grouped
    /// into units (ranges of the returned order) — each example alone (`bce`), or each user's
    /// whole list (`listwise`), so that batches hold whole lists.
    fn units(self, examples: &[Example]) -> (Vec<usize>, Vec<std::ops::Range<usize>>) {
        match self {
            RankLoss::Bce => ((0..examples.len()).collect(), (0..examples.len()).map(|k| k..k + 1).collect()),
            RankLoss::Listwise => {
                let mut lists: Vec<Vec<usize>> = lists_by_user(examples).into_values().collect();
                // HashMap order is arbitrary: a fixed order before the driver's seeded shuffle.
                lists.sort_unstable_by_key(|l| l[0]);
                let (mut order, mut units) = (Vec::with_capacity(examples.len()), Vec::with_capacity(lists.len()));
                for l in lists {
                    units.push(order.len()..order.len() + l.len());
                    order.extend(l);
                }
                (order, units)
            }
        }
    }

    /// The batch's summed loss, its total weight (the loss's denominator), and the logits'
    /// gradient of the mean (`logits[j]` belongs to `examples[batch[j]]`).
    pub(crate) fn batch_loss(self, examples: &[Example], batch: &[usize], logits: &[f32]) -> (f64, f64, Vec<f32>) {
        match self {
            RankLoss::Bce => weighted_bce(examples, batch, logits),
            RankLoss::Listwise => listwise_softmax(examples, batch, logits),
        }
    }
}

/// A ranker's head as the training driver sees it: units of examples (see
/// [`RankLoss::units`]) and the ranker's own batch step.
struct Head<'a, F> {
    order: Vec<usize>,
    units: Vec<std::ops::Range<usize>>,
    batch: Vec<usize>,
    rng: &'a mut rand_chacha::ChaCha8Rng,
    train_batch: F,
}

impl<F> EpochTrainer for Head<'_, F>
where
    F: FnMut(&[usize], &mut rand_chacha::ChaCha8Rng) -> (f64, f64),
{
    type Unit = std::ops::Range<usize>;
    type Model = ();

    fn units(&mut self, _epoch: usize) -> Vec<Self::Unit> {
        self.units.clone()
    }

    fn unit_len(unit: &Self::Unit) -> usize {
        unit.len()
    }

    fn step(&mut self, batch: &[Self::Unit]) -> (f64, f64) {
        self.batch.clear();
        for r in batch {
            self.batch.extend_from_slice(&self.order[r.clone()]);
        }
        (self.train_batch)(&self.batch, self.rng)
    }

    fn snapshot(&self) {}
}

/// Trains a ranker's head for `epochs` epochs of `loss`'s batches over `examples` through the
/// training driver: `train_batch(batch, rng)` takes one step and returns the batch's summed loss
/// and weight. Batches of one example are skipped (batch norm needs two rows).
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_epochs(
    model: &'static str,
    epochs: usize,
    loss: RankLoss,
    batch_size: usize,
    examples: &[Example],
    rng: &mut rand_chacha::ChaCha8Rng,
    progress: &dyn tandem_data::Progress,
    train_batch: impl FnMut(&[usize], &mut rand_chacha::ChaCha8Rng) -> (f64, f64),
) -> tandem_models::Result<()> {
    let (order, units) = loss.units(examples);
    let plan = Epochs { min_batch: 2, ..Epochs::new(model, epochs, batch_size, rng.random()) };
    let mut head = Head { order, units, batch: Vec::new(), rng, train_batch };
    fit::train(&plan, &mut head, progress, None)?;
    Ok(())
}

/// Each user's example indices.
pub(crate) fn lists_by_user(examples: &[Example]) -> HashMap<u32, Vec<usize>> {
    let mut by_user: HashMap<u32, Vec<usize>> = HashMap::new();
    for (k, e) in examples.iter().enumerate() {
        by_user.entry(e.user).or_default().push(k);
    }
    by_user
}

/// [`RankLoss::Listwise`] over the runs of one user in `batch` (lists are contiguous): per list
/// with positives P, `-(1/|P|) sum_p w_p log softmax(logits)_p`; the total weight is the number
/// of such lists.
fn listwise_softmax(examples: &[Example], batch: &[usize], logits: &[f32]) -> (f64, f64, Vec<f32>) {
    let mut grads = vec![0f32; batch.len()];
    let (mut loss, mut lists) = (0.0f64, 0usize);
    let mut start = 0;
    while start < batch.len() {
        let user = examples[batch[start]].user;
        let end = start + batch[start..].iter().take_while(|&&k| examples[k].user == user).count();
        let run = start..end;
        let n_pos = run.clone().filter(|&j| examples[batch[j]].label > 0.0).count();
        if n_pos > 0 {
            lists += 1;
            let max = run.clone().map(|j| logits[j]).fold(f32::NEG_INFINITY, f32::max);
            let z: f64 = run.clone().map(|j| ((logits[j] - max) as f64).exp()).sum();
            let mut w_sum = 0.0f64;
            for j in run.clone() {
                let e = &examples[batch[j]];
                if e.label > 0.0 {
                    let w = e.weight as f64 / n_pos as f64;
                    w_sum += w;
                    loss -= w * ((logits[j] - max) as f64 - z.ln());
                    grads[j] -= w as f32;
                }
            }
            for j in run {
                grads[j] += (w_sum * ((logits[j] - max) as f64).exp() / z) as f32;
            }
        }
        start = end;
    }
    let total = lists.max(1) as f32;
    grads.iter_mut().for_each(|g| *g /= total);
    (loss, lists as f64, grads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mining::Source;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn ex(user: u32, label: f32, weight: f32) -> Example {
        Example { user, item: 0, label, weight, source: if label > 0.0 { Source::Positive } else { Source::Hard } }
    }

    /// Two lists: user 0 with logits [0, ln 3] (positive: the second), user 1 with no positive
    /// (ignored). softmax = [1/4, 3/4]: loss = -ln(3/4), gradient = softmax - target.
    #[test]
    fn listwise_matches_a_hand_computed_case() {
        let examples = [ex(0, 0.0, 1.0), ex(0, 1.0, 1.0), ex(1, 0.0, 1.0), ex(1, 0.0, 1.0)];
        let (loss, weight, g) = RankLoss::Listwise.batch_loss(&examples, &[0, 1, 2, 3], &[0.0, 3f32.ln(), 5.0, 1.0]);
        assert!((loss - -(0.75f64).ln()).abs() < 1e-6, "{loss}");
        assert_eq!(weight, 1.0, "one list with a positive");
        let want = [0.25, -0.25, 0.0, 0.0];
        assert!(g.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6), "{g:?}");
        // Two positives of weights 1 and 3 in one list of three equal logits: each p = 1/3;
        // loss = -(1/2)(1 + 3) ln(1/3); d/dlogit = 2 * 1/3 - w/2 for positives, 2/3 for the negative.
        let examples = [ex(0, 1.0, 1.0), ex(0, 1.0, 3.0), ex(0, 0.0, 1.0)];
        let (loss, _, g) = RankLoss::Listwise.batch_loss(&examples, &[0, 1, 2], &[0.0; 3]);
        assert!((loss - 2.0 * 3f64.ln()).abs() < 1e-6, "{loss}");
        let want = [2.0 / 3.0 - 0.5, 2.0 / 3.0 - 1.5, 2.0 / 3.0];
        assert!(g.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6), "{g:?}");
    }

    #[test]
    fn listwise_batches_keep_lists_whole_and_cover_every_example() {
        let examples: Vec<Example> = (0..50).map(|k| ex(k % 7, (k % 5 == 0) as u8 as f32, 1.0)).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut batches: Vec<Vec<usize>> = Vec::new();
        let record = |b: &[usize], _: &mut ChaCha8Rng| {
            batches.push(b.to_vec());
            (0.0, 1.0)
        };
        train_epochs("t", 1, RankLoss::Listwise, 10, &examples, &mut rng, &tandem_data::NoProgress, record).unwrap();
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
        for b in &batches {
            assert!(b.len() >= 10 || b == batches.last().unwrap(), "lists packed up to the batch size");
            // A user's examples are contiguous and all in one batch.
            let users: Vec<u32> = b.iter().map(|&k| examples[k].user).collect();
            let mut runs = users.clone();
            runs.dedup();
            let mut distinct = runs.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(runs.len(), distinct.len(), "{users:?}");
            for u in distinct {
                assert_eq!(users.iter().filter(|&&x| x == u).count(), examples.iter().filter(|e| e.user == u).count());
            }
        }
        let mut bce = 0;
        let count = |_: &[usize], _: &mut ChaCha8Rng| {
            bce += 1;
            (0.0, 1.0)
        };
        train_epochs("t", 1, RankLoss::Bce, 10, &examples, &mut rng, &tandem_data::NoProgress, count).unwrap();
        assert_eq!(bce, 5);
    }
}
