//! Implicit ALS (Hu, Koren and Volinsky 2008) with the conjugate-gradient solver of Takács,
//! Pilászy and Tikk (2011), as in `implicit`.
//!
//! Confidence `c_ui = 1 + alpha * r_ui` for observed pairs and 1 elsewhere; preference 1 for
//! observed pairs and 0 elsewhere. Each half-step solves, for every user (then item),
//! `(YᵀY + λI + Σ_i (c_ui - 1) y_i y_iᵀ) x_u = Σ_i c_ui y_i` by a few CG steps warm-started
//! from the current `x_u`, so a step costs O(nnz · f + n · f · cg_steps).

mod cg;
mod model;
mod params;
mod train;

pub use model::Als;
pub use params::AlsParams;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retriever::{Query, Retriever};
    use crate::testing::{checkerboard, conformance};
    use tandem_data::NoProgress;

    #[test]
    fn conformance_suite() {
        let t = checkerboard();
        // Two communities are rank 2; with more factors than that, ALS memorises 10-item rows.
        let p = AlsParams { factors: 2, iterations: 10, regularization: 0.01, alpha: 5.0, ..Default::default() };
        conformance::<AlsParams>(&p.fit(&t, &NoProgress).unwrap(), &t, 1.0);
    }

    #[test]
    fn seeded_and_reproducible() {
        let t = checkerboard();
        let p = AlsParams { factors: 4, iterations: 3, ..Default::default() };
        let (a, b) = (p.fit(&t, &NoProgress).unwrap(), p.fit(&t, &NoProgress).unwrap());
        assert_eq!(a.user_factors(), b.user_factors());
    }

    /// Many CG steps converge to the exact solve of a user's normal equations.
    #[test]
    fn cg_converges_to_the_exact_user_solution() {
        let t = checkerboard();
        let p = AlsParams { factors: 6, iterations: 5, cg_steps: 50, ..Default::default() };
        let m = p.fit(&t, &NoProgress).unwrap();
        let q = Query::from_row(&t.user_items, 3);
        let exact = m.solve_user(q.items, q.weights);
        let mut x = vec![0f32; 6];
        let mut yty = m.item_factors().gram();
        for i in 0..6 {
            yty[i * 6 + i] += p.regularization as f64;
        }
        let yty: Vec<f32> = yty.into_iter().map(|v| v as f32).collect();
        let h = cg::HalfStep { yty: &yty, y: m.item_factors(), alpha: p.alpha, steps: 50 };
        cg::cg_solve::<crate::factors::Portable>(&h, q.items, q.weights, &mut x, &mut [0.0; 18]);
        for (a, b) in x.iter().zip(&exact) {
            assert!((a - b).abs() < 1e-3, "{x:?} vs {exact:?}");
        }
        // The anonymous path uses the exact solve and ranks like the trained user.
        let mut anon = vec![0.0; t.n_items()];
        m.score(&Query { trained: None, ..q }, &mut anon);
        assert!(anon.iter().all(|s| s.is_finite()));
    }

    /// A user who moved from the even community to the odd one: plain ALS follows the majority
    /// of the history, recency-weighted ALS follows where the user went.
    #[test]
    fn recency_half_life_follows_the_latest_items() {
        let (t, mover) = crate::testing::checkerboard_and_mover(&[(0, 0), (1, 2), (2, 4), (3, 6), (100, 1), (101, 3)]);
        let top_unseen = |half_life| {
            let p = AlsParams {
                factors: 2,
                iterations: 10,
                regularization: 5.0,
                alpha: 50.0,
                recency_half_life: half_life,
                ..Default::default()
            };
            let m = p.fit(&t, &NoProgress).unwrap();
            let mut s = vec![0.0; t.n_items()];
            m.score(&Query::from_row(&t.user_items, mover), &mut s);
            (0..t.n_items()).filter(|i| ![0, 2, 4, 6, 1, 3].contains(i)).max_by(|&a, &b| s[a].total_cmp(&s[b])).unwrap()
        };
        assert_eq!(top_unseen(0.0) % 2, 0, "plain ALS follows the 4 even items");
        assert_eq!(top_unseen(0.5) % 2, 1, "recency follows the 2 latest, odd items");
    }

    #[test]
    fn bad_parameters_are_named() {
        let e = AlsParams { factors: 0, ..Default::default() }.fit(&checkerboard(), &NoProgress).unwrap_err();
        assert!(e.to_string().contains("factors"));
    }
}
