use super::*;
use crate::retriever::{Query, Retriever, TrainSet};
use crate::testing::{checkerboard, conformance};
use tandem_data::{Interaction, Interactions, NoProgress};

fn tiny() -> TrainSet {
    // users: 0 -> {0,1}, 1 -> {0,1,2}, 2 -> {2,3}
    let mut log = Interactions::new();
    for (u, i) in [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 2), (2, 3)] {
        log.push(Interaction { user: u, item: i, time: 0, weight: 1.0 });
    }
    TrainSet::new(log, 3, 4)
}

#[test]
fn item_knn_without_weighting_counts_co_occurrences() {
    let p = KnnParams { weighting: Weighting::None, neighbours: 10, ..Default::default() };
    let m = p.fit_item_knn(&tiny(), &NoProgress).unwrap();
    let mut out = vec![0.0; 4];
    // History {0}: sim(0,0)=2, sim(0,1)=2, sim(0,2)=1, sim(0,3)=0.
    m.score(&Query { trained: None, items: &[0], weights: &[1.0] }, &mut out);
    assert_eq!(out, vec![2.0, 2.0, 1.0, 0.0]);
    // History {0, 3} with weight 2 on item 3: adds 2 * (sim(3,2)=1, sim(3,3)=1).
    m.score(&Query { trained: None, items: &[0, 3], weights: &[1.0, 2.0] }, &mut out);
    assert_eq!(out, vec![2.0, 2.0, 3.0, 2.0]);
}

#[test]
fn item_knn_keeps_only_top_neighbours() {
    let p = KnnParams { weighting: Weighting::None, neighbours: 2, ..Default::default() };
    let m = p.fit_item_knn(&tiny(), &NoProgress).unwrap();
    // Item 2's similarities: 2->2 = 2, 2->0 = 1, 2->1 = 1, 2->3 = 1; top 2 keeps itself and item 0 (tie -> lower index).
    assert_eq!(m.neighbours().row(2).0, &[0, 2]);
}

#[test]
fn item_knn_cosine_similarity() {
    let p = KnnParams { weighting: Weighting::Cosine, neighbours: 10, ..Default::default() };
    let m = p.fit_item_knn(&tiny(), &NoProgress).unwrap();
    let mut out = vec![0.0; 4];
    m.score(&Query { trained: None, items: &[2], weights: &[1.0] }, &mut out);
    // item 2 = users {1,2}; item 3 = {2}: cos = 1/sqrt(2); item 0 = {0,1}: 1/2.
    assert!((out[3] - 0.5f32.sqrt()).abs() < 1e-6 && (out[0] - 0.5).abs() < 1e-6);
}

#[test]
fn user_knn_votes_with_neighbours() {
    let p = KnnParams { weighting: Weighting::None, neighbours: 1, ..Default::default() };
    let m = p.fit_user_knn(&tiny(), &NoProgress).unwrap();
    let mut out = vec![0.0; 4];
    // User 0 {0,1}: sims to user 1 = 2, user 2 = 0; one neighbour (user 1) votes 2 * row(1).
    let ui = tiny().user_items;
    m.score(&Query::from_row(&ui, 0), &mut out);
    assert_eq!(out, vec![2.0, 2.0, 2.0, 0.0]);
    // The same history as an anonymous query may pick user 0 itself too (not excluded); a tie
    // between users 0 and 1 at 2 goes to user 0.
    m.score(&Query { trained: None, items: &[0, 1], weights: &[1.0, 1.0] }, &mut out);
    assert_eq!(out, vec![2.0, 2.0, 0.0, 0.0]);
}

#[test]
fn bad_parameters_are_named() {
    let e = KnnParams { neighbours: 0, ..Default::default() }.fit_item_knn(&tiny(), &NoProgress).unwrap_err();
    assert!(e.to_string().contains("neighbours"), "{e}");
    let e = KnnParams { bm25_b: 2.0, ..Default::default() }.fit_user_knn(&tiny(), &NoProgress).unwrap_err();
    assert!(e.to_string().contains("bm25_b"), "{e}");
}

#[test]
fn conformance_suite() {
    for w in [Weighting::None, Weighting::Cosine, Weighting::Tfidf, Weighting::Bm25] {
        let p = KnnParams { weighting: w, neighbours: 20, ..Default::default() };
        let train = checkerboard();
        conformance::<KnnParams>(&p.fit_item_knn(&train, &NoProgress).unwrap(), &train, 1.0);
        conformance::<KnnParams>(&p.fit_user_knn(&train, &NoProgress).unwrap(), &train, 1.0);
    }
}

#[test]
fn item_knn_from_the_latest_items_of_trained_users() {
    // User 1 bought items 0, 1 then (latest) 2, each once at a later time.
    let mut log = Interactions::new();
    for (u, i, t) in [(0, 0, 0), (0, 1, 1), (1, 0, 2), (1, 1, 3), (1, 2, 4), (2, 2, 5), (2, 3, 6)] {
        log.push(Interaction { user: u, item: i, time: t * 86_400, weight: 1.0 });
    }
    let t = TrainSet::new(log, 3, 4);
    let p = KnnParams { weighting: Weighting::None, neighbours: 10, latest: 1, ..Default::default() };
    let m = p.fit_item_knn(&t, &NoProgress).unwrap();
    let mut out = vec![0.0; 4];
    // Only item 2 counts for user 1: sim(2, .) = [1, 1, 2, 1].
    m.score(&Query::from_row(&t.user_items, 1), &mut out);
    assert_eq!(out, vec![1.0, 1.0, 2.0, 1.0]);
    // A history without a trained row scores from all of it.
    m.score(&Query { trained: None, items: &[0, 2], weights: &[1.0, 1.0] }, &mut out);
    assert_eq!(out, vec![3.0, 3.0, 3.0, 1.0]);
    conformance::<KnnParams>(&m, &t, 0.0);
    let e = crate::kind::ModelParams::fit(
        &p,
        &mut crate::kind::Fit {
            kind: "user_knn",
            train: &t,
            side: Default::default(),
            progress: &NoProgress,
            validate: None,
        },
    );
    assert!(e.err().unwrap().to_string().contains("0 for user_knn"));
}

#[test]
fn item_knn_recency_half_life_weighs_a_trained_users_latest_items_most() {
    // The same log; user 1's rows by time are items 0, 1, 2: with half-life 1 they weigh 1/4,
    // 1/2 and 1. Unweighted similarities: sim(0, .) = [2, 2, 1, 0], sim(1, .) = [2, 2, 1, 0],
    // sim(2, .) = [1, 1, 2, 1].
    let mut log = Interactions::new();
    for (u, i, t) in [(0, 0, 0), (0, 1, 1), (1, 0, 2), (1, 1, 3), (1, 2, 4), (2, 2, 5), (2, 3, 6)] {
        log.push(Interaction { user: u, item: i, time: t, weight: 1.0 });
    }
    let t = TrainSet::new(log, 3, 4);
    let p = KnnParams { weighting: Weighting::None, neighbours: 10, recency_half_life: 1.0, ..Default::default() };
    let m = p.fit_item_knn(&t, &NoProgress).unwrap();
    let mut out = vec![0.0; 4];
    m.score(&Query::from_row(&t.user_items, 1), &mut out);
    assert_eq!(out, vec![0.25 * 2.0 + 0.5 * 2.0 + 1.0, 0.25 * 2.0 + 0.5 * 2.0 + 1.0, 0.25 + 0.5 + 2.0, 1.0]);
    // An anonymous history keeps its own weights.
    m.score(&Query { trained: None, items: &[0, 2], weights: &[1.0, 1.0] }, &mut out);
    assert_eq!(out, vec![3.0, 3.0, 3.0, 1.0]);
    conformance::<KnnParams>(&m, &t, 0.0);
    let both = KnnParams { latest: 2, ..p.clone() }.fit_item_knn(&t, &NoProgress).unwrap_err();
    assert!(both.to_string().contains("recency_half_life") && both.to_string().contains("latest"), "{both}");
}

#[test]
fn item_knn_window_days_builds_similarities_from_recent_rows_only() {
    // Items 0 and 1 co-occur only on day 0; items 1 and 2 on day 9 (the last day).
    let mut log = Interactions::new();
    for (u, i, day) in [(0, 0, 0), (0, 1, 0), (1, 1, 9), (1, 2, 9)] {
        log.push(Interaction { user: u, item: i, time: day * 86_400, weight: 1.0 });
    }
    let t = TrainSet::new(log, 2, 3);
    let p = KnnParams { weighting: Weighting::None, neighbours: 10, window_days: Some(3), ..Default::default() };
    let m = p.fit_item_knn(&t, &NoProgress).unwrap();
    let mut out = vec![0.0; 3];
    m.score(&Query { trained: None, items: &[1], weights: &[1.0] }, &mut out);
    assert_eq!(out, vec![0.0, 1.0, 1.0], "the day-0 pair is outside the window");
    let all = KnnParams { window_days: None, ..p }.fit_item_knn(&t, &NoProgress).unwrap();
    all.score(&Query { trained: None, items: &[1], weights: &[1.0] }, &mut out);
    assert_eq!(out, vec![1.0, 2.0, 1.0]);
}
