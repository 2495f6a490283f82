//! Best-epoch keeping with patience, shared by every model trained in epochs.

/// Keeps the best-scoring epoch's model (a real copy) and says when to stop.
#[derive(Debug)]
pub struct BestEpoch<M> {
    best: Option<(f64, M)>,
    since_best: usize,
    patience: usize,
}

impl<M> BestEpoch<M> {
    /// Stops after `patience` epochs without improvement; 0 never stops.
    pub fn new(patience: usize) -> Self {
        BestEpoch { best: None, since_best: 0, patience }
    }

    /// Records an epoch's validation `score` (higher is better; `None`: nothing validated) and its
    /// `model`; returns whether training should stop.
    pub fn observe(&mut self, score: Option<f64>, model: M) -> bool {
        match score {
            Some(s) if self.best.as_ref().is_none_or(|(b, _)| s > *b) => {
                self.best = Some((s, model));
                self.since_best = 0;
                false
            }
            Some(_) => {
                self.since_best += 1;
                self.patience > 0 && self.since_best >= self.patience
            }
            None => false,
        }
    }

    /// The best score seen, if any epoch was scored.
    pub fn best_score(&self) -> Option<f64> {
        self.best.as_ref().map(|(s, _)| *s)
    }

    /// The best model seen, if any epoch was scored.
    pub fn into_best(self) -> Option<M> {
        self.best.map(|(_, m)| m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_and_stops_after_patience() {
        let mut b = BestEpoch::new(2);
        assert!(!b.observe(Some(0.1), 1));
        assert!(!b.observe(Some(0.5), 2));
        assert!(!b.observe(None, 3));
        assert!(!b.observe(Some(0.3), 4));
        assert!(b.observe(Some(0.5), 5), "a tie is no improvement");
        assert_eq!(b.best_score(), Some(0.5));
        assert_eq!(b.into_best(), Some(2));
        let mut never = BestEpoch::new(0);
        assert!((0..10).all(|k| !never.observe(Some(-(k as f64)), k)));
        assert_eq!(BestEpoch::<u8>::new(1).into_best(), None);
    }
}
