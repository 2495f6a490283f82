//! A conformance suite every retriever runs (in the spirit of `implicit`'s shared tests).

use crate::retriever::{Query, Retriever, TrainSet};
use tandem_data::{Interaction, Interactions};

/// Two communities on a checkerboard: even users like even items, odd users odd items; each
/// user's "diagonal" item (`user % n_items`) is withheld from training.
pub fn checkerboard() -> TrainSet {
    let (n_users, n_items) = (20u32, 10u32);
    let mut log = Interactions::new();
    for u in 0..n_users {
        for i in 0..n_items {
            if i % 2 == u % 2 && i != u % n_items {
                log.push(Interaction { user: u, item: i, time: (u * n_items + i) as i64, weight: 1.0 });
            }
        }
    }
    TrainSet::new(log, n_users as usize, n_items as usize)
}

/// [`checkerboard`] and one more user, who took `history` ((time, item) pairs): the set and
/// that user's id.
pub fn checkerboard_and_mover(history: &[(i64, u32)]) -> (TrainSet, u32) {
    let t = checkerboard();
    let mut log = Interactions::new();
    t.log.iter().for_each(|r| log.push(r));
    let mover = t.n_users() as u32;
    for &(time, item) in history {
        log.push(Interaction { user: mover, item, time, weight: 1.0 });
    }
    (TrainSet::new(log, t.n_users() + 1, t.n_items()), mover)
}

/// [`checkerboard`] with each user's rows in a scrambled time order, for sequence-aware models:
/// in the original every user meets its items in id order, so the lowest is never a target and
/// the highest never history.
pub fn scrambled_checkerboard() -> TrainSet {
    let t = checkerboard();
    let mut log = Interactions::new();
    for r in t.log.iter() {
        log.push(Interaction { time: ((r.item * 7 + r.user * 3) % 10) as i64, ..r });
    }
    TrainSet::new(log, t.n_users(), t.n_items())
}

/// The share of [`checkerboard`] users whose withheld item a model trained by stochastic
/// gradients must rank first. Which few users such a small model gets wrong depends on the
/// order of its examples (measured over 8 seeds: NCF, two-tower with history and the softmax
/// family miss 0-5 of 20); a model that learned nothing gets about 1 in 6.
pub const SGD_LEARNED: f64 = 0.7;

/// Checks the behaviour every retriever must show on `train` (fitted from [`checkerboard`]):
/// for personalised models (`learned` > 0), the withheld diagonal item ranks first among unseen
/// items for at least that share of users (1.0 for exact models, [`SGD_LEARNED`] for ones
/// trained by stochastic gradients); k above the catalogue size
/// returns every allowed item once; scores are non-increasing with ties by index; excluded
/// items never appear; an empty history scores without panicking; identical scores after
/// save -> load; Send + Sync.
pub fn conformance<P: crate::kind::ModelParams>(model: &dyn Retriever, train: &TrainSet, learned: f64) {
    conformance_with(model, train, learned, &P::load)
}

pub use crate::artifact::Loader;

/// [`conformance`] with a loader of its own (a pipeline's, which loads its parts).
pub fn conformance_with(model: &dyn Retriever, train: &TrainSet, learned: f64, load: &Loader) {
    fn assert_send_sync<T: Send + Sync + ?Sized>(_: &T) {}
    assert_send_sync(model);
    let n = model.n_items();
    assert_eq!(n, train.n_items());
    let mut missed = Vec::new();
    for u in 0..train.n_users() as u32 {
        let q = Query::from_row(&train.user_items, u);
        let seen = q.items;
        let recs = model.recommend(&q, n + 5, &|i| !seen.contains(&i));
        assert_eq!(recs.len(), n - seen.len(), "user {u}: every unseen item once");
        let expected = u % n as u32;
        if recs[0].item != expected {
            missed.push((u, recs[0].item));
        }
        for w in recs.windows(2) {
            assert!(
                w[0].score > w[1].score || (w[0].score == w[1].score && w[0].item < w[1].item),
                "user {u}: order {w:?}"
            );
        }
        assert!(recs.iter().all(|r| !seen.contains(&r.item)));
    }
    let share = 1.0 - missed.len() as f64 / train.n_users().max(1) as f64;
    assert!(
        share >= learned,
        "withheld item first for {share:.2} of users (want {learned}); (user, first) missed: {missed:?}"
    );
    let empty = Query { trained: None, items: &[], weights: &[] };
    let mut out = vec![0.0; n];
    model.score(&empty, &mut out);
    assert!(out.iter().all(|s| !s.is_nan()));
    // Save -> load gives identical scores.
    let art = model.artifact();
    assert_eq!(model.params(), art.params, "{}: params() is what the artifact saves", art.kind);
    let dir = std::env::temp_dir().join(format!(
        "tandem-conformance-{}-{}-{:?}",
        art.kind,
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tensors.safetensors");
    crate::artifact::write_tensors(&path, &art.tensors).unwrap();
    let tensors = crate::artifact::read_tensors(&path).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let loaded = load(art.kind, art.params.clone(), &tensors).unwrap();
    assert_eq!(loaded.artifact(), art, "{}: artifact round trip", art.kind);
    for u in 0..train.n_users() as u32 {
        let q = Query::from_row(&train.user_items, u);
        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
        model.score(&q, &mut a);
        loaded.score(&q, &mut b);
        assert_eq!(a, b, "{}: identical scores after save -> load", art.kind);
    }
    // Scoring a few items (one the model never saw) agrees with scoring them all.
    let items = [n as u32 - 1, 0, n as u32 + 7, 1];
    for u in [0, train.n_users() as u32 - 1] {
        let q = Query::from_row(&train.user_items, u);
        let mut all = vec![0.0; n];
        model.score(&q, &mut all);
        let mut some = [0.0; 4];
        model.score_items(&q, &items, &mut some);
        let want = items.map(|i| all.get(i as usize).copied().unwrap_or(f32::NEG_INFINITY));
        for (a, b) in some.iter().zip(&want) {
            assert!(
                a == b || (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                "{}: score_items {some:?} vs {want:?}",
                art.kind
            );
        }
    }
    let sim = model.similar_items(0, 3);
    assert!(sim.iter().all(|s| s.item != 0) && sim.len() <= 3);
    let mut queries: Vec<Query<'_>> =
        (0..train.n_users() as u32).map(|u| Query::from_row(&train.user_items, u)).collect();
    queries.push(Query { trained: None, ..queries[1] });
    queries.push(empty);
    for k in [1, 3, n + 2] {
        batch_matches_single(model, &queries, k);
    }
}

/// The batch paths give exactly what the one-query paths give: every row of `score_batch` is
/// `score`'s, and `recommend_batch` (seen items excluded) is `top_k` over `score` and
/// `recommend`, list for list.
pub fn batch_matches_single(model: &dyn Retriever, queries: &[Query<'_>], k: usize) {
    let n = model.n_items();
    let mut rows = vec![0f32; queries.len() * n];
    model.score_batch(queries, &mut rows);
    let keep = |q: usize, i: u32| queries[q].items.binary_search(&i).is_err();
    let lists = model.recommend_batch(queries, k, &keep);
    assert_eq!(lists.len(), queries.len());
    let mut one = vec![0f32; n];
    for (q, query) in queries.iter().enumerate() {
        model.score(query, &mut one);
        let kind = model.kind();
        assert!(
            one.iter().zip(&rows[q * n..(q + 1) * n]).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{kind}: score_batch row {q}"
        );
        let want = crate::top_k(&one, k, |i| keep(q, i));
        assert_eq!(lists[q], want, "{kind}: recommend_batch list {q} is top_k over score");
        assert_eq!(model.recommend(query, k, &|i| keep(q, i)), want, "{kind}: recommend {q}");
    }
}
