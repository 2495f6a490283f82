//! Compressed sparse rows: the matrix every model reads.

use crate::Interactions;

/// A sparse matrix in CSR form with `u32` column indices, columns sorted within each row and
/// duplicate entries summed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Csr {
    n_rows: usize,
    n_cols: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    data: Vec<f32>,
}

impl Csr {
    /// Builds from triplets by counting sort; duplicates `(row, col)` are summed.
    /// Every row index must be `< n_rows` and every column `< n_cols`.
    pub fn from_triplets(n_rows: usize, n_cols: usize, rows: &[u32], cols: &[u32], vals: &[f32]) -> Csr {
        assert!(rows.len() == cols.len() && cols.len() == vals.len());
        let mut counts = vec![0usize; n_rows + 1];
        for &r in rows {
            counts[r as usize + 1] += 1;
        }
        for i in 0..n_rows {
            counts[i + 1] += counts[i];
        }
        let mut next = counts.clone();
        let mut idx = vec![0u32; rows.len()];
        let mut dat = vec![0f32; rows.len()];
        for k in 0..rows.len() {
            let r = rows[k] as usize;
            debug_assert!((cols[k] as usize) < n_cols);
            idx[next[r]] = cols[k];
            dat[next[r]] = vals[k];
            next[r] += 1;
        }
        // Sort each row by column and merge duplicates.
        let mut indptr = Vec::with_capacity(n_rows + 1);
        let mut indices = Vec::with_capacity(rows.len());
        let mut data = Vec::with_capacity(rows.len());
        indptr.push(0);
        let mut pairs: Vec<(u32, f32)> = Vec::new();
        for r in 0..n_rows {
            pairs.clear();
            pairs.extend((counts[r]..counts[r + 1]).map(|k| (idx[k], dat[k])));
            pairs.sort_unstable_by_key(|p| p.0);
            for &(c, v) in &pairs {
                if indices.len() > indptr[r] && *indices.last().unwrap() == c {
                    *data.last_mut().unwrap() += v;
                } else {
                    indices.push(c);
                    data.push(v);
                }
            }
            indptr.push(indices.len());
        }
        Csr { n_rows, n_cols, indptr, indices, data }
    }

    /// The user x item matrix of a log (weights summed over repeated pairs).
    pub fn user_items(log: &Interactions, n_users: usize, n_items: usize) -> Csr {
        Csr::from_triplets(n_users, n_items, &log.user, &log.item, &log.weight)
    }

    /// Same pattern with new values (one per stored entry).
    pub fn with_values(&self, data: Vec<f32>) -> Csr {
        assert_eq!(data.len(), self.data.len());
        Csr { data, ..self.clone() }
    }

    /// The transpose (rows become columns).
    pub fn transpose(&self) -> Csr {
        let mut rows = Vec::with_capacity(self.nnz());
        for r in 0..self.n_rows {
            rows.extend(std::iter::repeat_n(r as u32, self.indptr[r + 1] - self.indptr[r]));
        }
        Csr::from_triplets(self.n_cols, self.n_rows, &self.indices, &rows, &self.data)
    }

    /// Column indices and values of row `r` (empty for `r >= n_rows`).
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        if r >= self.n_rows {
            return (&[], &[]);
        }
        let (a, b) = (self.indptr[r], self.indptr[r + 1]);
        (&self.indices[a..b], &self.data[a..b])
    }

    /// Number of stored entries in row `r`.
    pub fn row_len(&self, r: usize) -> usize {
        if r >= self.n_rows {
            0
        } else {
            self.indptr[r + 1] - self.indptr[r]
        }
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Number of columns.
    pub fn n_cols(&self) -> usize {
        self.n_cols
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Row pointers (`n_rows + 1` entries).
    pub fn indptr(&self) -> &[usize] {
        &self.indptr
    }

    /// Column index per stored entry.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// Value per stored entry.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Sum of the values in each column.
    pub fn column_sums(&self) -> Vec<f64> {
        let mut s = vec![0f64; self.n_cols];
        for (&c, &v) in self.indices.iter().zip(&self.data) {
            s[c as usize] += v as f64;
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_duplicates_and_sorts_columns() {
        let m = Csr::from_triplets(2, 3, &[1, 0, 1, 1], &[2, 1, 0, 2], &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m.row(0), (&[1u32][..], &[2.0f32][..]));
        assert_eq!(m.row(1), (&[0u32, 2][..], &[3.0f32, 5.0][..]));
        assert_eq!(m.nnz(), 3);
        let t = m.transpose();
        assert_eq!(t.row(2), (&[1u32][..], &[5.0f32][..]));
        assert_eq!(t.transpose(), m);
        assert_eq!(m.row(7).0.len(), 0);
    }
}
