//! Sparse row optimisers over shared parameter tables.
//!
//! Hogwild (Niu et al. 2011): workers read and write the rows an example touches without locks.
//! A table is a block of `UnsafeCell<f32>`; a worker copies a row into its own buffer
//! ([`ParamTable::read`]), computes there with vectorised code, and copies the result back.
//! Those two copy loops are the only unsafe code. With several workers, two of
//! them may copy the same row at once — an unsynchronised race that Rust's memory model leaves
//! undefined and that on x86-64 / aarch64 compiles to plain loads and stores: the worst
//! observable effect is a stale or lost update, which Hogwild SGD tolerates by design (implicit
//! and LightFM train the same way). We accepted this after measuring `AtomicU32` storage, which
//! is race-free but forces scalar element-by-element code: 2-3.5x slower than implicit's BPR.
//! With `threads: 1` nothing is shared and nothing races. Adam keeps a per-row step count for
//! its bias correction (lazy Adam, as PyTorch's SparseAdam).

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

/// Which optimiser updates the rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Plain SGD.
    Sgd,
    /// Adagrad (the default): per-parameter learning rates from accumulated squared gradients.
    #[default]
    Adagrad,
    /// Adam with per-row bias correction.
    Adam,
}

/// Optimiser settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Optimizer {
    /// The rule.
    pub kind: OptimizerKind,
    /// Learning rate.
    pub lr: f32,
    /// L2 weight decay added to the gradient (`g + wd * w`).
    pub weight_decay: f32,
}

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPS: f32 = 1e-8;

/// Adam's bias corrections `(1 - beta1^t, 1 - beta2^t)` for a row's step `t`: from a table
/// (a `powi` per row update cost ~5% of NCF training); past it both are 1 to f32 precision.
fn bias_corrections(t: u64) -> (f32, f32) {
    const STEPS: usize = 1 << 15;
    static TABLE: std::sync::OnceLock<Vec<(f32, f32)>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let c = |beta: f32, t: i32| (1.0 - f64::from(beta).powi(t)) as f32;
        (0..STEPS as i32).map(|t| (c(BETA1, t), c(BETA2, t))).collect()
    });
    table.get(t as usize).copied().unwrap_or((1.0, 1.0))
}

/// `f32` storage shared by Hogwild workers (see the module docs for the race it allows).
///
/// The values start on a 64-byte boundary, so that rows of 16k values own their cache lines:
/// threads training disjoint rows (MF's blocks) then never write one line.
struct Shared {
    cells: Box<[UnsafeCell<f32>]>,
    /// Where the values start in `cells`.
    off: usize,
    len: usize,
}

// SAFETY: workers only copy whole rows in and out through `read` / `write`; concurrent copies
// of one row are the documented Hogwild race (stale or lost updates), never a torn length or
// an out-of-bounds access: every index is checked against the table's length.
unsafe impl Sync for Shared {}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Shared({} values)", self.len)
    }
}

impl Shared {
    fn new(v: impl IntoIterator<Item = f32>) -> Self {
        const LINE: usize = 64 / std::mem::size_of::<f32>();
        let v: Vec<f32> = v.into_iter().collect();
        let cells: Box<[UnsafeCell<f32>]> = (0..v.len() + LINE - 1).map(|_| UnsafeCell::new(0.0)).collect();
        let off = (cells.as_ptr() as usize).wrapping_neg() % 64 / std::mem::size_of::<f32>();
        let shared = Shared { cells, off, len: v.len() };
        shared.write(0, &v);
        shared
    }

    #[inline(always)]
    fn cells(&self) -> &[UnsafeCell<f32>] {
        &self.cells[self.off..self.off + self.len]
    }

    // Element loops rather than `copy_nonoverlapping`: rows are short, and an inline loop
    // vectorises where a call to memmove of unknown length does not (12% of BPR time).
    #[inline(always)]
    fn read(&self, start: usize, out: &mut [f32]) {
        let cells = &self.cells()[start..start + out.len()];
        for (o, c) in out.iter_mut().zip(cells) {
            // SAFETY: the cell is in bounds; the read races only with other Hogwild workers
            // (module docs).
            *o = unsafe { *c.get() };
        }
    }

    #[inline(always)]
    fn write(&self, start: usize, from: &[f32]) {
        let cells = &self.cells()[start..start + from.len()];
        for (c, &v) in cells.iter().zip(from) {
            // SAFETY: as in `read`; writing through UnsafeCell is its intended use.
            unsafe { *c.get() = v };
        }
    }

    /// A raw pointer to `len` values from `start`, bounds-checked here, for kernels that
    /// update rows in place (same race as `read` / `write`).
    #[inline(always)]
    fn ptr(&self, start: usize, len: usize) -> *mut f32 {
        UnsafeCell::raw_get(self.cells()[start..start + len].as_ptr())
    }

    fn snapshot(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.len];
        self.read(0, &mut out);
        out
    }
}

/// A row gradient `a * x + b * y` (x, y at least as long as the row).
#[derive(Debug, Clone, Copy)]
pub struct Grad<'a> {
    /// Weight of `x`.
    pub a: f32,
    /// First vector.
    pub x: &'a [f32],
    /// Weight of `y`.
    pub b: f32,
    /// Second vector.
    pub y: &'a [f32],
}

/// Runs `f` on a zeroed scratch buffer of `len` floats: on the stack up to 256, else the heap.
#[inline(always)]
fn scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    if len <= 256 {
        let mut buf = [0f32; 256];
        f(&mut buf[..len])
    } else {
        f(&mut vec![0f32; len])
    }
}

/// A `rows x dim` table of parameters with its optimiser state.
#[derive(Debug)]
pub struct ParamTable {
    dim: usize,
    values: Shared,
    state1: Shared,
    state2: Shared,
    steps: Vec<AtomicU32>,
}

impl ParamTable {
    /// A table holding `values` (`rows * dim` of them) for `kind`.
    pub fn new(values: &[f32], dim: usize, kind: OptimizerKind) -> Self {
        let n = values.len();
        let rows = n / dim.max(1);
        let (s1, s2, steps) = match kind {
            OptimizerKind::Sgd => (0, 0, 0),
            OptimizerKind::Adagrad => (n, 0, 0),
            OptimizerKind::Adam => (n, n, rows),
        };
        ParamTable {
            dim,
            values: Shared::new(values.iter().copied()),
            state1: Shared::new(std::iter::repeat_n(0.0, s1)),
            state2: Shared::new(std::iter::repeat_n(0.0, s2)),
            steps: (0..steps).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// Reads row `r` into `out` (length `dim`).
    #[inline(always)]
    pub fn read(&self, r: usize, out: &mut [f32]) {
        self.values.read(r * self.dim, out);
    }

    /// A raw pointer to row `r`'s `dim` values (bounds-checked), for fused kernels that update
    /// rows in place; writing through it is the Hogwild race of the module docs.
    ///
    /// Contract: a kernel that holds several row pointers of one table at once must be given
    /// distinct rows. The same row through two pointers would alias inside one thread, where
    /// the kernel's reads and writes would no longer be a stale-or-lost update but a wrong one.
    /// MF's BPR kernel relies on it: a positive and its negative are never the same item, as
    /// negatives are drawn among the items the user does not have.
    #[inline(always)]
    pub fn row_ptr(&self, r: usize) -> *mut f32 {
        self.values.ptr(r * self.dim, self.dim)
    }

    /// A raw pointer to row `r` of the first optimiser state (Adagrad's accumulators), for
    /// fused kernels, as [`ParamTable::row_ptr`] (same contract; panics under plain SGD, which
    /// keeps no state).
    #[inline(always)]
    pub fn state_ptr(&self, r: usize) -> *mut f32 {
        self.state1.ptr(r * self.dim, self.dim)
    }

    /// Value `k` of row `r`.
    #[inline(always)]
    pub fn get(&self, r: usize, k: usize) -> f32 {
        let mut v = [0f32];
        self.values.read(r * self.dim + k, &mut v);
        v[0]
    }

    /// Applies gradient `grad` (length `dim`) to row `r`.
    #[inline]
    pub fn update(&self, r: usize, grad: &[f32], opt: &Optimizer) {
        scratch(self.dim, |cur| {
            self.read(r, cur);
            self.update_row(r, cur, Grad { a: 1.0, x: grad, b: 0.0, y: grad }, opt);
        })
    }

    /// Updates row `r`, whose current values the caller read into `current`, with gradient
    /// `grad.a * grad.x + grad.b * grad.y`. New values are computed in `current` by zipped,
    /// vectorisable loops and written back once; the rule is chosen once, outside the loop.
    #[inline(always)]
    pub fn update_row(&self, r: usize, current: &mut [f32], grad: Grad<'_>, opt: &Optimizer) {
        let base = r * self.dim;
        let (lr, wd) = (opt.lr, opt.weight_decay);
        let Grad { a, x, b, y } = grad;
        let n = current.len();
        let (x, y) = (&x[..n], &y[..n]);
        match opt.kind {
            OptimizerKind::Sgd => {
                for ((w, &xi), &yi) in current.iter_mut().zip(x).zip(y) {
                    *w -= lr * (a * xi + b * yi + wd * *w);
                }
            }
            OptimizerKind::Adagrad => scratch(n, |acc| {
                self.state1.read(base, acc);
                for (((w, acc), &xi), &yi) in current.iter_mut().zip(acc.iter_mut()).zip(x).zip(y) {
                    let g = a * xi + b * yi + wd * *w;
                    *acc += g * g;
                    *w -= lr * g / (acc.sqrt() + 1e-10);
                }
                self.state1.write(base, acc);
            }),
            OptimizerKind::Adam => {
                let t = self.steps[r].fetch_add(1, Relaxed) + 1;
                let (c1, c2) = bias_corrections(t as u64);
                scratch(n, |m| {
                    scratch(n, |v| {
                        self.state1.read(base, m);
                        self.state2.read(base, v);
                        for ((((w, m), v), &xi), &yi) in
                            current.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(x).zip(y)
                        {
                            let g = a * xi + b * yi + wd * *w;
                            *m = BETA1 * *m + (1.0 - BETA1) * g;
                            *v = BETA2 * *v + (1.0 - BETA2) * g * g;
                            *w -= lr * (*m / c1) / ((*v / c2).sqrt() + EPS);
                        }
                        self.state1.write(base, m);
                        self.state2.write(base, v);
                    })
                })
            }
        }
        self.values.write(base, current);
    }

    /// Updates the single value of a 1-wide row (a bias) with gradient `g`.
    #[inline(always)]
    pub fn update_scalar(&self, r: usize, g: f32, opt: &Optimizer) {
        let mut w = [0f32];
        self.values.read(r, &mut w);
        self.update_row(r, &mut w, Grad { a: g, x: &[1.0], b: 0.0, y: &[0.0] }, opt);
    }

    /// A private copy (values, optimiser state, step counts) for a worker that updates a row
    /// every worker touches, such as MF's global bias; [`ParamTable::absorb`] adds the copies'
    /// changes back.
    pub fn fork(&self) -> ParamTable {
        ParamTable {
            dim: self.dim,
            values: Shared::new(self.values.snapshot()),
            state1: Shared::new(self.state1.snapshot()),
            state2: Shared::new(self.state2.snapshot()),
            steps: self.steps.iter().map(|s| AtomicU32::new(s.load(Relaxed))).collect(),
        }
    }

    /// Adds every fork's change since it was made, in order: `self + Σ (fork - self)` for the
    /// values, the optimiser state and the step counts. Called while no worker is running.
    pub fn absorb(&self, forks: &[ParamTable]) {
        let merge = |base: &Shared, part: &dyn Fn(&ParamTable) -> &Shared| {
            let start = base.snapshot();
            let mut total = start.clone();
            for f in forks {
                for ((t, &v), &s) in total.iter_mut().zip(&part(f).snapshot()).zip(&start) {
                    *t += v - s;
                }
            }
            base.write(0, &total);
        };
        merge(&self.values, &|f| &f.values);
        merge(&self.state1, &|f| &f.state1);
        merge(&self.state2, &|f| &f.state2);
        for (k, step) in self.steps.iter().enumerate() {
            let start = step.load(Relaxed);
            let added: u32 = forks.iter().map(|f| f.steps[k].load(Relaxed).wrapping_sub(start)).sum();
            step.store(start + added, Relaxed);
        }
    }

    /// A plain copy of the values.
    pub fn snapshot(&self) -> Vec<f32> {
        self.values.snapshot()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn forks_add_their_changes_back() {
        for kind in [OptimizerKind::Sgd, OptimizerKind::Adagrad, OptimizerKind::Adam] {
            let opt = Optimizer { kind, lr: 0.1, weight_decay: 0.0 };
            let (shared, serial) = (ParamTable::new(&[1.0], 1, kind), ParamTable::new(&[1.0], 1, kind));
            let forks = [shared.fork(), shared.fork()];
            forks[0].update_scalar(0, 0.5, &opt);
            forks[1].update_scalar(0, 2.0, &opt);
            shared.absorb(&forks);
            // The first step of every rule depends only on its own gradient, so two forked
            // first steps add up to what two independent first steps would change.
            let (a, b) = (ParamTable::new(&[1.0], 1, kind), ParamTable::new(&[1.0], 1, kind));
            a.update_scalar(0, 0.5, &opt);
            b.update_scalar(0, 2.0, &opt);
            let want = 1.0 + (a.get(0, 0) - 1.0) + (b.get(0, 0) - 1.0);
            assert!((shared.get(0, 0) - want).abs() < 1e-6, "{kind:?}: {} vs {want}", shared.get(0, 0));
            assert_ne!(shared.get(0, 0), serial.get(0, 0), "{kind:?}: the forks' changes arrived");
            if kind == OptimizerKind::Adam {
                assert_eq!(shared.steps[0].load(Relaxed), 2, "step counts add");
            }
        }
    }

    #[test]
    fn bias_corrections_match_the_formula() {
        for t in [1u64, 2, 10, 1000, 20_000, 40_000, 1 << 40] {
            let (c1, c2) = super::bias_corrections(t);
            let e = |b: f32| (1.0 - f64::from(b).powf(t as f64)) as f32;
            assert!((c1 - e(super::BETA1)).abs() < 1e-6 && (c2 - e(super::BETA2)).abs() < 1e-6, "t {t}: {c1} {c2}");
        }
    }

    use super::*;

    #[test]
    fn each_rule_steps_downhill() {
        for kind in [OptimizerKind::Sgd, OptimizerKind::Adagrad, OptimizerKind::Adam] {
            let t = ParamTable::new(&[1.0, -1.0], 2, kind);
            let opt = Optimizer { kind, lr: 0.1, weight_decay: 0.0 };
            // Minimise w^2: gradient 2w.
            for _ in 0..50 {
                let mut w = [0.0; 2];
                t.read(0, &mut w);
                t.update(0, &[2.0 * w[0], 2.0 * w[1]], &opt);
            }
            let w = t.snapshot();
            assert!(w[0].abs() < 0.5 && w[1].abs() < 0.5, "{kind:?}: {w:?}");
        }
        // `update` and the in-buffer `update_row` follow the same rules.
        for kind in [OptimizerKind::Sgd, OptimizerKind::Adagrad, OptimizerKind::Adam] {
            let (a, b) = (ParamTable::new(&[1.0, -2.0], 2, kind), ParamTable::new(&[1.0, -2.0], 2, kind));
            let opt = Optimizer { kind, lr: 0.1, weight_decay: 0.01 };
            for _ in 0..3 {
                a.update(0, &[0.5, 0.25], &opt);
                let mut cur = [0.0; 2];
                b.read(0, &mut cur);
                b.update_row(0, &mut cur, Grad { a: 1.0, x: &[0.5, 0.25], b: 0.0, y: &[0.0, 0.0] }, &opt);
            }
            assert_eq!(a.snapshot(), b.snapshot(), "{kind:?}");
        }
        // SGD exactly: w - lr * (g + wd w).
        let t = ParamTable::new(&[1.0], 1, OptimizerKind::Sgd);
        t.update(0, &[0.5], &Optimizer { kind: OptimizerKind::Sgd, lr: 0.1, weight_decay: 0.2 });
        assert!((t.get(0, 0) - (1.0 - 0.1 * (0.5 + 0.2))).abs() < 1e-7);
    }
}
