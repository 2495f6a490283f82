//! The one training driver of every model trained in epochs (MF, NCF / NeuMF, two-tower, the
//! history model, the softmax family, both rankers): it owns the epoch loop — shuffling,
//! batching, progress, the loss mean, the divergence check, per-epoch validation, early stopping
//! and the best-epoch copy. A model supplies its examples, one batch step and a snapshot
//! ([`EpochTrainer`]).

use std::time::Instant;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use tandem_data::Progress;

use crate::early_stop::BestEpoch;
use crate::error::{ModelError, Result};

/// What one epoch did.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport {
    /// 1-based epoch number (counted on across a model's training rounds).
    pub epoch: usize,
    /// Mean loss per example (weighted where examples carry weights; MF estimates it on
    /// every 8th example).
    pub loss: f64,
    /// Examples trained on.
    pub examples: usize,
    /// Wall-clock seconds of the epoch (without validation).
    pub seconds: f64,
    /// Set by the validation callback through [`EpochReport::stop`].
    stop: std::cell::Cell<bool>,
}

impl EpochReport {
    /// The report of epoch `epoch` with no loss or examples: for callers that drive a
    /// validation callback themselves (a tuner's tests).
    pub fn at(epoch: usize) -> EpochReport {
        EpochReport { epoch, loss: 0.0, examples: 0, seconds: 0.0, stop: Default::default() }
    }

    /// Whether the callback asked training to end.
    pub fn stopped(&self) -> bool {
        self.stop.get()
    }

    /// Asks training to end after this epoch (the best epoch so far is still the model): a
    /// tuner pruning a trial that validates below its peers at the same epoch.
    pub fn stop(&self) {
        self.stop.set(true);
    }
}

/// How a model's epochs run.
#[derive(Debug, Clone)]
pub struct Epochs {
    /// The model kind, for errors.
    pub model: &'static str,
    /// The progress label (`"tdm tree 2/3"`); the kind when empty.
    pub label: String,
    /// Epochs to run.
    pub epochs: usize,
    /// With validation: stop after this many epochs without improvement (0 never stops).
    pub patience: usize,
    /// Seeds each epoch's shuffle (with the epoch number).
    pub seed: u64,
    /// Examples per batch (`usize::MAX`: the whole epoch is one step).
    pub batch_size: usize,
    /// Batches with fewer examples are skipped (batch norm and in-batch negatives need 2).
    pub min_batch: usize,
    /// Epochs numbered before this run (a later training round goes on counting).
    pub first_epoch: usize,
    /// What to try when the loss diverges.
    pub hint: &'static str,
}

impl Epochs {
    /// `epochs` epochs of `batch_size` examples for `model`, seeded with `seed`; no
    /// patience, offset or minimum batch, hint "lower learning_rate".
    pub fn new(model: &'static str, epochs: usize, batch_size: usize, seed: u64) -> Self {
        Epochs {
            model,
            label: String::new(),
            epochs,
            patience: 0,
            seed,
            batch_size,
            min_batch: 1,
            first_epoch: 0,
            hint: "lower learning_rate",
        }
    }
}

/// What a model brings to the driver.
pub trait EpochTrainer {
    /// What is shuffled: an example, or a whole list that must stay in one batch.
    type Unit;
    /// What a snapshot is (the fitted model).
    type Model;

    /// The units of epoch `epoch` (1-based), in a fixed order: the driver shuffles them.
    fn units(&mut self, epoch: usize) -> Vec<Self::Unit>;

    /// Examples in a unit (1 unless a unit is a list).
    fn unit_len(_unit: &Self::Unit) -> usize {
        1
    }

    /// One optimisation step on a batch; returns its summed loss and summed weight (the
    /// number of examples unless they are weighted).
    fn step(&mut self, batch: &[Self::Unit]) -> (f64, f64);

    /// The model as trained so far.
    fn snapshot(&self) -> Self::Model;
}

/// What the driver returns: the model to keep (the best validated epoch's copy, else the last
/// epoch's) and the best validation score, if any epoch was scored.
#[derive(Debug)]
pub struct Trained<M> {
    /// The model.
    pub model: M,
    /// Its validation score.
    pub best: Option<f64>,
}

/// Called after every epoch with the model as it stands; returns a validation score (higher is
/// better) or `None` when there is nothing to validate on.
pub type Validate<'a, M> = dyn FnMut(&EpochReport, &M) -> Option<f64> + 'a;

/// [`Validate`] for models that are retrievers, seen as `&dyn Retriever`.
pub type ValidateRetriever<'a> = dyn FnMut(&EpochReport, &dyn crate::Retriever) -> Option<f64> + 'a;

/// [`train`] for a model that is a retriever, validated through `&dyn Retriever`.
pub fn train_retriever<T>(
    plan: &Epochs,
    trainer: &mut T,
    progress: &dyn Progress,
    validate: Option<&mut ValidateRetriever<'_>>,
) -> Result<Trained<T::Model>>
where
    T: EpochTrainer,
    T::Model: crate::Retriever,
{
    match validate {
        Some(v) => train(plan, trainer, progress, Some(&mut |r: &EpochReport, m: &T::Model| v(r, m))),
        None => train(plan, trainer, progress, None),
    }
}

/// Runs `plan`'s epochs of `trainer`. Each epoch's units are shuffled with a generator seeded by
/// `plan.seed` and the epoch number, packed into batches of at least `batch_size` examples
/// (whole units; the last batch may be smaller), and stepped through with a progress bar. A
/// non-finite mean loss stops with [`ModelError::Diverged`]. With `validate`, every epoch's
/// snapshot is scored, the best is kept and training stops after `patience` epochs without
/// improvement, or when the callback calls [`EpochReport::stop`].
pub fn train<T: EpochTrainer>(
    plan: &Epochs,
    trainer: &mut T,
    progress: &dyn Progress,
    mut validate: Option<&mut Validate<'_, T::Model>>,
) -> Result<Trained<T::Model>> {
    let label = if plan.label.is_empty() { plan.model } else { plan.label.as_str() };
    let mut best = BestEpoch::new(plan.patience);
    for e in 1..=plan.epochs {
        let epoch = plan.first_epoch + e;
        let start = Instant::now();
        let mut units = trainer.units(epoch);
        units.shuffle(&mut SmallRng::seed_from_u64(plan.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9)));
        let total: usize = units.iter().map(T::unit_len).sum();
        let step = progress.step(&format!("{label} epoch {e}/{}", plan.epochs), total as u64);
        let (mut loss, mut weight, mut done, mut shown) = (0.0, 0.0, 0usize, Instant::now());
        let mut rest = &units[..];
        while !rest.is_empty() {
            let mut n = 0;
            let mut size = 0;
            while n < rest.len() && size < plan.batch_size {
                size += T::unit_len(&rest[n]);
                n += 1;
            }
            let (batch, tail) = rest.split_at(n);
            rest = tail;
            if size < plan.min_batch {
                continue;
            }
            let (l, w) = trainer.step(batch);
            loss += l;
            weight += w;
            done += size;
            step.inc(size as u64);
            if shown.elapsed().as_secs_f64() >= 0.5 {
                shown = Instant::now();
                let rate = done as f64 / start.elapsed().as_secs_f64().max(1e-9);
                step.message(&format!("loss {:.4}  {rate:.0} examples/s", loss / weight.max(1e-12)));
            }
        }
        drop(step);
        let report = EpochReport {
            epoch,
            loss: loss / weight.max(1e-12),
            examples: total,
            seconds: start.elapsed().as_secs_f64(),
            stop: std::cell::Cell::new(false),
        };
        if !report.loss.is_finite() {
            return Err(ModelError::Diverged { model: plan.model, hint: plan.hint.into() });
        }
        let Some(validate) = validate.as_mut() else { continue };
        let model = trainer.snapshot();
        if best.observe(validate(&report, &model), model) || report.stop.get() {
            break;
        }
    }
    let score = best.best_score();
    Ok(match best.into_best() {
        Some(model) => Trained { model, best: score },
        None => Trained { model: trainer.snapshot(), best: None },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_data::NoProgress;

    /// Learns nothing: records what it was given and reports a scripted loss.
    struct Script {
        losses: Vec<f64>,
        batches: Vec<Vec<u32>>,
        epoch: usize,
    }

    impl EpochTrainer for Script {
        type Unit = u32;
        type Model = usize;
        fn units(&mut self, epoch: usize) -> Vec<u32> {
            self.epoch = epoch;
            (0..10).collect()
        }
        fn step(&mut self, batch: &[u32]) -> (f64, f64) {
            self.batches.push(batch.to_vec());
            let l = self.losses[self.epoch - 1];
            (l * batch.len() as f64, batch.len() as f64)
        }
        fn snapshot(&self) -> usize {
            self.epoch
        }
    }

    fn script(losses: &[f64]) -> Script {
        Script { losses: losses.to_vec(), batches: Vec::new(), epoch: 0 }
    }

    #[test]
    fn batches_cover_every_unit_once_per_epoch_in_a_seeded_order() {
        let plan = Epochs { min_batch: 2, ..Epochs::new("t", 2, 4, 7) };
        let mut a = script(&[1.0, 1.0]);
        train(&plan, &mut a, &NoProgress, None).unwrap();
        // 10 units in batches of 4: 4, 4, then a last batch of 2 (kept: min_batch is 2).
        assert_eq!(a.batches.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 4, 2, 4, 4, 2]);
        let mut first: Vec<u32> = a.batches[..3].concat();
        assert_ne!(first, (0..10).collect::<Vec<_>>(), "shuffled");
        first.sort_unstable();
        assert_eq!(first, (0..10).collect::<Vec<_>>());
        assert_ne!(a.batches[..3].concat(), a.batches[3..].concat(), "a new order every epoch");
        let mut b = script(&[1.0, 1.0]);
        train(&plan, &mut b, &NoProgress, None).unwrap();
        assert_eq!(a.batches, b.batches, "seeded");
        // A batch under min_batch is skipped.
        let mut c = script(&[1.0]);
        train(&Epochs { min_batch: 3, ..Epochs::new("t", 1, 4, 7) }, &mut c, &NoProgress, None).unwrap();
        assert_eq!(c.batches.len(), 2);
    }

    #[test]
    fn keeps_the_best_epoch_stops_on_patience_and_reports_divergence() {
        let plan = Epochs { patience: 2, ..Epochs::new("t", 10, 5, 1) };
        let scores = [0.1, 0.3, 0.2, 0.25, 0.9];
        let mut seen = Vec::new();
        let mut validate = |r: &EpochReport, m: &usize| {
            seen.push((r.epoch, r.loss, *m));
            Some(scores[r.epoch - 1])
        };
        let t = train(&plan, &mut script(&[0.5; 10]), &NoProgress, Some(&mut validate)).unwrap();
        assert_eq!((t.model, t.best), (2, Some(0.3)), "epoch 2 kept; stopped after 3 and 4");
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        assert!(seen.iter().all(|s| (s.1 - 0.5).abs() < 1e-12), "the mean loss per example");
        // A callback's stop ends training after that epoch, keeping the best so far.
        let mut pruned = |r: &EpochReport, _: &usize| {
            if r.epoch == 2 {
                r.stop();
            }
            Some([0.4, 0.3, 0.9][r.epoch - 1])
        };
        let t = train(&Epochs::new("t", 3, 5, 1), &mut script(&[0.5; 3]), &NoProgress, Some(&mut pruned)).unwrap();
        assert_eq!((t.model, t.best), (1, Some(0.4)), "stopped after epoch 2; epoch 1 kept");
        // Without validation the last epoch is the model; epochs count on from first_epoch.
        let t =
            train(&Epochs { first_epoch: 3, ..Epochs::new("t", 2, 5, 1) }, &mut script(&[0.0; 5]), &NoProgress, None)
                .unwrap();
        assert_eq!((t.model, t.best), (5, None));
        let e = train(&Epochs::new("t", 3, 5, 1), &mut script(&[1.0, f64::NAN, 1.0]), &NoProgress, None).unwrap_err();
        assert!(e.to_string().contains("t diverged") && e.to_string().contains("learning_rate"), "{e}");
    }
}
