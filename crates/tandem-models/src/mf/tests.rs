use super::train::{Blocks, Example, Tables};
use super::*;
use crate::testing::{checkerboard, conformance};
use crate::{Retriever, TrainSet};
use tandem_data::NoProgress;

fn small(loss: Loss) -> MfParams {
    MfParams { factors: 4, loss, epochs: 40, learning_rate: 0.1, threads: 1, ..Default::default() }
}

#[test]
fn conformance_bpr_and_bce() {
    let t = checkerboard();
    for loss in [Loss::Bpr, Loss::Bce] {
        let m = small(loss).fit(&t, &NoProgress).unwrap();
        conformance::<MfParams>(&m, &t, 1.0);
    }
}

#[test]
fn one_thread_is_bit_reproducible_and_many_threads_learn_the_same() {
    let t = checkerboard();
    let p = small(Loss::Bpr);
    assert_eq!(p.fit(&t, &NoProgress).unwrap(), p.fit(&t, &NoProgress).unwrap());
    // Hogwild gives other bits but the same ranking on this easy problem.
    let hog = MfParams { threads: 0, blocks: 1, batch_size: 8, ..p }.fit(&t, &NoProgress).unwrap();
    conformance::<MfParams>(&hog, &t, 1.0);
}

/// With zero-initialised factors and no biases nothing can move, so every example's loss is
/// the loss at score 0: softplus(margin) for BPR, ln 2 for BCE. This pins the margin on the
/// training path.
#[test]
fn first_epoch_loss_matches_hand_computation() {
    let t = checkerboard();
    for (loss, margin, want) in
        [(Loss::Bpr, 0.0f32, 2f64.ln()), (Loss::Bpr, 1.0, (1.0 + 1f64.exp()).ln()), (Loss::Bce, 0.0, 2f64.ln())]
    {
        let p = MfParams { loss, margin, init_std: 0.0, biases: false, epochs: 1, threads: 1, ..Default::default() };
        let mut seen = None;
        p.fit_with(&t, &NoProgress, &mut |r, _| {
            seen = Some(r.loss);
            None
        })
        .unwrap();
        assert!((seen.unwrap() - want).abs() < 1e-6, "{loss:?} margin {margin}: {seen:?} vs {want}");
    }
}

#[test]
fn early_stopping_keeps_the_best_epoch_as_a_copy() {
    let t = checkerboard();
    let p = MfParams { epochs: 10, patience: 2, ..small(Loss::Bpr) };
    let scores = [0.1, 0.5, 0.3, 0.2, 0.9];
    let mut snapshots = Vec::new();
    let best = p
        .fit_with(&t, &NoProgress, &mut |r, m| {
            snapshots.push(m.clone());
            Some(scores[r.epoch - 1])
        })
        .unwrap();
    assert_eq!(snapshots.len(), 4, "stops two epochs after the best");
    assert_eq!(best, snapshots[1], "the best epoch's weights");
    assert_ne!(best, snapshots[3]);
}

fn count_examples(p: &MfParams) -> (usize, usize, usize) {
    let t = checkerboard();
    let zeros = |n| crate::Factors::zeros(n, p.factors);
    let tables = Tables::new(&zeros(t.n_users()), &zeros(t.n_items()), p.optimizer);
    let ex = p.examples(&t.user_items, &tables, &Blocks::new(1, t.n_users(), t.n_items(), p.seed, 1), 1);
    let (mut pairs, mut pos, mut neg) = (0, 0, 0);
    for e in &ex {
        match *e {
            Example::Pair(u, i, j, _) => {
                pairs += 1;
                assert!(t.user_items.row(u as usize).0.contains(&i));
                assert!(!t.user_items.row(u as usize).0.contains(&j), "negatives exclude positives");
            }
            Example::Point(u, i, y) => {
                let known = t.user_items.row(u as usize).0.contains(&i);
                assert_eq!(known, y == 1.0);
                if y == 1.0 {
                    pos += 1
                } else {
                    neg += 1
                }
            }
        }
    }
    (pairs, pos, neg)
}

#[test]
fn negative_modes_draw_the_documented_counts() {
    let nnz = checkerboard().user_items.nnz();
    let users = checkerboard().n_users();
    let bpr = |mode, negatives| MfParams { loss: Loss::Bpr, negative_mode: mode, negatives, ..Default::default() };
    let bce = |mode, negatives| MfParams { loss: Loss::Bce, negative_mode: mode, negatives, ..Default::default() };
    assert_eq!(count_examples(&bpr(NegativeMode::Uniform, 4)), (4 * nnz, 0, 0));
    assert_eq!(count_examples(&bpr(NegativeMode::Fixed, 2)), (2 * nnz, 0, 0));
    assert_eq!(count_examples(&bpr(NegativeMode::Even, 9)), (nnz, 0, 0));
    assert_eq!(count_examples(&bce(NegativeMode::Uniform, 4)), (0, nnz, 4 * nnz));
    assert_eq!(count_examples(&bce(NegativeMode::Fixed, 3)), (0, nnz, 3 * users), "BCE fixed: per user");
    assert_eq!(count_examples(&bce(NegativeMode::Even, 3)), (0, nnz, nnz), "even: 1:1");
    let hard = MfParams {
        negative_mode: NegativeMode::Hard,
        hard_candidates: 4,
        hard_keep: 2,
        hard_random: 1,
        ..Default::default()
    };
    assert_eq!(count_examples(&hard), (3 * nnz, 0, 0), "M + K per positive");
}

#[test]
fn bad_parameters_are_named() {
    let t = checkerboard();
    for (p, name) in [
        (MfParams { learning_rate: 0.0, ..Default::default() }, "learning_rate"),
        (MfParams { epochs: 0, ..Default::default() }, "epochs"),
        (MfParams { negative_mode: NegativeMode::Hard, hard_keep: 20, ..Default::default() }, "hard_keep"),
    ] {
        let e = p.fit(&t, &NoProgress).unwrap_err().to_string();
        assert!(e.contains(name), "{e}");
    }
}

#[test]
fn divergence_is_a_typed_error() {
    let t = checkerboard();
    let p = MfParams {
        loss: Loss::Bce,
        optimizer: crate::optim::OptimizerKind::Sgd,
        learning_rate: 1e30,
        init_std: 1.0,
        threads: 1,
        ..Default::default()
    };
    let e = p.fit(&t, &NoProgress).unwrap_err().to_string();
    assert!(e.contains("diverged") && e.contains("learning_rate"), "{e}");
}

#[test]
fn bpr_gradient_and_loss_match_their_definitions() {
    for x in [-30.0f32, -2.0, -0.1, 0.0, 0.5, 3.0, 30.0] {
        let (g, loss) = super::train::bpr_grad_loss(x);
        let sig = |z: f64| 1.0 / (1.0 + (-z).exp());
        let want_g = -sig(-(x as f64));
        let want_loss = -(sig(x as f64)).ln();
        assert!((g as f64 - want_g).abs() < 1e-6, "x {x}: g {g} vs {want_g}");
        assert!((loss as f64 - want_loss).abs() < 1e-5 * want_loss.max(1.0), "x {x}: {loss} vs {want_loss}");
    }
}

/// 256 users and 256 items in two communities (user and item parity); each user has 24 random
/// items of its own parity. Large enough for 4 blocks of 64.
fn communities() -> crate::retriever::TrainSet {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let mut log = tandem_data::Interactions::new();
    for u in 0..256u32 {
        for k in 0..24 {
            let item = 2 * rng.random_range(0..128u32) + u % 2;
            log.push(tandem_data::Interaction { user: u, item, time: k, weight: 1.0 });
        }
    }
    crate::retriever::TrainSet::new(log, 256, 256)
}

#[test]
fn blocked_epochs_keep_pairs_in_one_stratum_and_learn() {
    let t = communities();
    let p = MfParams { blocks: 4, negatives: 2, ..Default::default() };
    assert_eq!(p.blocks_for(t.n_users(), t.n_items(), 1), 4);
    assert_eq!(p.blocks_for(100, 10_000, 8), 1, "at most one block per 64 users");
    assert_eq!(MfParams::default().blocks_for(10_000, 10_000, 1), 1, "auto: none on one thread");
    assert_eq!(MfParams::default().blocks_for(10_000, 10_000, 3), 6, "auto: twice the threads");

    let blocks = Blocks::new(4, t.n_users(), t.n_items(), 1, 7);
    let zeros = |n| crate::Factors::zeros(n, p.factors);
    let tables = Tables::new(&zeros(t.n_users()), &zeros(t.n_items()), p.optimizer);
    let hard = MfParams { negative_mode: NegativeMode::Hard, hard_keep: 1, hard_random: 1, ..p.clone() };
    let fixed = MfParams { negative_mode: NegativeMode::Fixed, ..p.clone() };
    for q in [&p, &hard, &fixed] {
        let ex = q.examples(&t.user_items, &tables, &blocks, 7);
        assert_eq!(ex.len(), 2 * t.user_items.nnz(), "{:?}: every positive keeps its negatives", q.negative_mode);
        for e in &ex {
            let Example::Pair(u, i, j, _) = *e else { panic!("BPR pairs") };
            assert!(!t.user_items.row(u as usize).0.contains(&j));
            assert_eq!(
                blocks.item_block(i),
                blocks.item_block(j),
                "({u}, {i}, {j}): negative from the positive's block"
            );
        }
        let strata = blocks.strata(ex.clone(), 1, 7);
        assert_eq!(strata.iter().map(|s| s.len()).sum::<usize>(), ex.len(), "strata partition the epoch");
    }

    // The same fit on one thread and on four: disjoint rows (and BCE's global bias merged in
    // a fixed order), so not a bit differs.
    for loss in [Loss::Bce, Loss::Bpr] {
        let one = MfParams { threads: 1, loss, ..p.clone() }.fit(&t, &NoProgress).unwrap();
        let four = MfParams { threads: 4, loss, ..p.clone() }.fit(&t, &NoProgress).unwrap();
        let same = one.users == four.users
            && one.items == four.items
            && one.item_bias == four.item_bias
            && one.user_bias == four.user_bias
            && one.global_bias == four.global_bias;
        assert!(same, "{loss:?}: 1 and 4 threads trained different weights");
        if loss == Loss::Bce {
            assert_ne!(one.global_bias, 0.0, "the global bias learned through its forks");
        }
    }
    let one = MfParams { threads: 1, ..p.clone() }.fit(&t, &NoProgress).unwrap();
    // And it learns the communities: each user's top 10 unseen items are of its parity.
    let top = |u: u32| {
        let q = crate::retriever::Query::from_row(&t.user_items, u);
        let seen = q.items;
        crate::Retriever::recommend(&one, &q, 10, &|i| !seen.contains(&i))
    };
    let pure = (0..256u32).filter(|&u| top(u).iter().all(|s| s.item % 2 == u % 2)).count();
    assert!(pure >= 240, "{pure} of 256 users with a pure top 10");
}

#[test]
fn a_recency_weight_fits_in_the_examples_padding() {
    assert_eq!(std::mem::size_of::<Example>(), 16, "MF's examples are its largest allocation");
}

/// One user's rows a (t 0), b (t 1), a again (t 2), c (t 3), half-life 1 row: c weighs 1,
/// a's rows 0.5 and 0.125 average to 0.3125, b weighs 0.25 (in 1/65535, rounded).
#[test]
fn recency_weights_are_hand_computed() {
    use tandem_data::{Interaction, Interactions};
    let mut log = Interactions::new();
    for (time, item) in [(0, 0), (1, 1), (2, 0), (3, 2)] {
        log.push(Interaction { user: 0, item, time, weight: 1.0 });
    }
    let t = TrainSet::new(log, 1, 3);
    let w = super::train::recency_weights(&t, 1.0);
    assert_eq!(t.user_items.row(0).0, &[0, 1, 2]);
    assert_eq!(w, vec![20480, 16384, 65535]);
    // The examples carry them, and a weight rounding to 0 trains no pairs.
    let p = MfParams { recency_half_life: 1.0, negatives: 1, threads: 1, ..small(Loss::Bpr) };
    let mut log = Interactions::new();
    for item in 0..18 {
        log.push(Interaction { user: 0, item, time: item as i64, weight: 1.0 });
    }
    let t = TrainSet::new(log, 1, 19);
    let mut tables = Tables::new(&crate::Factors::zeros(1, 4), &crate::Factors::zeros(19, 4), p.optimizer);
    tables.set_recency(super::train::recency_weights(&t, 1.0));
    let ex = p.examples(&t.user_items, &tables, &Blocks::new(1, 1, 19, p.seed, 1), 1);
    let weights: Vec<(u32, u16)> =
        ex.iter().map(|e| if let Example::Pair(_, i, _, w) = *e { (i, w) } else { panic!("BPR pairs") }).collect();
    // Item 0, 17 rows back, weighs 65535 / 2^17 < 0.5; item 1 weighs 65535 / 2^16, about 1.
    let expected: Vec<(u32, u16)> = (1..18).map(|i| (i, (65535.0 / 2f64.powi(17 - i as i32)).round() as u16)).collect();
    assert_eq!(weights, expected);
}

/// A user who moved from the even community to the odd one: plain BPR follows the majority of
/// the history, recency-weighted BPR where the user went.
#[test]
fn recency_half_life_follows_the_latest_items() {
    let history = [(0, 0), (1, 2), (2, 4), (3, 6), (100, 1)];
    let (t, mover) = crate::testing::checkerboard_and_mover(&history);
    let top_unseen = |half_life| {
        let p = MfParams { recency_half_life: half_life, biases: false, ..small(Loss::Bpr) };
        let m = p.fit(&t, &NoProgress).unwrap();
        let mut s = vec![0f32; t.n_items()];
        m.score(&crate::Query::from_row(&t.user_items, mover), &mut s);
        (0..t.n_items() as u32)
            .filter(|i| !history.iter().any(|h| h.1 == *i))
            .max_by(|&a, &b| s[a as usize].total_cmp(&s[b as usize]))
            .unwrap()
    };
    assert_eq!(top_unseen(0.0), 8, "plain BPR follows the 4 even items");
    assert_eq!(top_unseen(0.5) % 2, 1, "recency follows the latest, odd item");
}

#[test]
fn recency_with_bce_is_refused_by_name() {
    let e = MfParams { recency_half_life: 2.0, ..small(Loss::Bce) }.fit(&checkerboard(), &NoProgress).unwrap_err();
    assert!(e.to_string().contains("recency_half_life") && e.to_string().contains("bce"), "{e}");
}
