//! Model artifacts: what a fitted model saves and how it comes back (SPEC §8).
//!
//! A model hands out its parameters as JSON and its state as named tensors
//! ([`Retriever::artifact`]); [`write_tensors`] / [`read_tensors`] store tensors in the
//! safetensors format; [`crate::kind::ModelParams::load`] rebuilds the model. The binary adds
//! the manifest, id maps and data fingerprint around them.

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use tandem_data::Csr;

use crate::error::{ModelError, Result};

/// A tensor's values.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// 32-bit floats.
    F32(Vec<f32>),
    /// 32-bit unsigned integers (indices).
    U32(Vec<u32>),
    /// 64-bit unsigned integers (offsets).
    U64(Vec<u64>),
    /// Bytes (an embedded model file, UTF-8 text).
    U8(Vec<u8>),
}

/// A named tensor with its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Shape (row-major).
    pub shape: Vec<usize>,
    /// Values.
    pub data: TensorData,
}

impl Tensor {
    /// A 1-d f32 tensor.
    pub fn f32(data: Vec<f32>) -> Tensor {
        Tensor { shape: vec![data.len()], data: TensorData::F32(data) }
    }

    /// A 1-d u32 tensor.
    pub fn u32(data: Vec<u32>) -> Tensor {
        Tensor { shape: vec![data.len()], data: TensorData::U32(data) }
    }

    /// A 2-d f32 tensor.
    pub fn matrix(rows: usize, cols: usize, data: Vec<f32>) -> Tensor {
        Tensor { shape: vec![rows, cols], data: TensorData::F32(data) }
    }
}

/// What a fitted model saves.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    /// The model kind (its registry name).
    pub kind: &'static str,
    /// Its parameters, as the config would write them (without `kind`).
    pub params: serde_json::Value,
    /// Its state.
    pub tensors: BTreeMap<String, Tensor>,
}

/// Tensors by name.
pub type Tensors = BTreeMap<String, Tensor>;

/// Rebuilds a saved model from its kind, parameters and tensors (composite models load their
/// parts through one).
pub type Loader = dyn Fn(&str, serde_json::Value, &Tensors) -> crate::Result<Box<dyn crate::Retriever>>;

fn bytes_of(t: &Tensor) -> (Dtype, Vec<u8>) {
    match &t.data {
        TensorData::F32(v) => (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        TensorData::U32(v) => (Dtype::U32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        TensorData::U64(v) => (Dtype::U64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        TensorData::U8(v) => (Dtype::U8, v.clone()),
    }
}

fn corrupt(path: &Path, message: impl std::fmt::Display) -> ModelError {
    ModelError::Artifact { path: path.display().to_string(), message: message.to_string() }
}

/// Writes `tensors` to `path` in the safetensors format.
pub fn write_tensors(path: &Path, tensors: &Tensors) -> Result<()> {
    let encoded: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, t)| {
            let (dtype, bytes) = bytes_of(t);
            (name.clone(), dtype, t.shape.clone(), bytes)
        })
        .collect();
    let views = encoded
        .iter()
        .map(|(n, d, s, b)| TensorView::new(*d, s.clone(), b).map(|v| (n.clone(), v)))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| corrupt(path, e))?;
    let bytes = safetensors::serialize(views, None).map_err(|e| corrupt(path, e))?;
    std::fs::write(path, bytes).map_err(|e| corrupt(path, e))
}

/// Reads every tensor of a safetensors file.
pub fn read_tensors(path: &Path) -> Result<Tensors> {
    let bytes = std::fs::read(path).map_err(|e| corrupt(path, e))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| corrupt(path, e))?;
    let mut out = Tensors::new();
    for (name, view) in st.tensors() {
        let raw = view.data();
        let data = match view.dtype() {
            Dtype::F32 => {
                TensorData::F32(raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
            }
            Dtype::U32 => {
                TensorData::U32(raw.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect())
            }
            Dtype::U64 => {
                TensorData::U64(raw.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect())
            }
            Dtype::U8 => TensorData::U8(raw.to_vec()),
            other => return Err(corrupt(path, format!("tensor '{name}' has unsupported type {other:?}"))),
        };
        out.insert(name, Tensor { shape: view.shape().to_vec(), data });
    }
    Ok(out)
}

/// Takes tensors out of a loaded set by name, checking types and shapes.
pub struct TensorReader<'a> {
    tensors: &'a Tensors,
    kind: &'static str,
}

impl<'a> TensorReader<'a> {
    /// Reads `tensors` of a `kind` model.
    pub fn new(tensors: &'a Tensors, kind: &'static str) -> Self {
        TensorReader { tensors, kind }
    }

    /// The tensor `name`, or an error naming it.
    pub fn get(&self, name: &str) -> Result<&'a Tensor> {
        self.tensors.get(name).ok_or_else(|| ModelError::Artifact {
            path: format!("{} model", self.kind),
            message: format!("tensor '{name}' is missing"),
        })
    }

    fn bad(&self, name: &str, what: &str) -> ModelError {
        ModelError::Artifact { path: format!("{} model", self.kind), message: format!("tensor '{name}': {what}") }
    }

    /// An f32 tensor and its shape.
    pub fn f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        match self.get(name)? {
            Tensor { shape, data: TensorData::F32(v) } => Ok((shape.clone(), v.clone())),
            _ => Err(self.bad(name, "expected f32")),
        }
    }

    /// A u32 tensor's values.
    pub fn u32(&self, name: &str) -> Result<Vec<u32>> {
        match self.get(name)? {
            Tensor { data: TensorData::U32(v), .. } => Ok(v.clone()),
            _ => Err(self.bad(name, "expected u32")),
        }
    }

    /// A `rows x cols` f32 matrix.
    pub fn matrix(&self, name: &str) -> Result<crate::Factors> {
        let (shape, v) = self.f32(name)?;
        match shape[..] {
            [r, c] if r * c == v.len() => Ok(crate::Factors::from_vec(r, c, v)),
            _ => Err(self.bad(name, "expected a matrix")),
        }
    }

    /// [`csr`](Self::csr) for state a model keeps only with some parameters: `None` when the
    /// artifact has no `<name>.indptr`.
    pub fn optional_csr(&self, name: &str) -> Result<Option<Csr>> {
        match self.tensors.contains_key(&format!("{name}.indptr")) {
            true => self.csr(name).map(Some),
            false => Ok(None),
        }
    }

    /// A CSR matrix stored as `<name>.indptr` (u64), `.indices` (u32), `.data` (f32), `.shape` (u64).
    pub fn csr(&self, name: &str) -> Result<Csr> {
        let field = |f: &str| format!("{name}.{f}");
        let (indptr, indices, shape) = match (
            &self.get(&field("indptr"))?.data,
            &self.get(&field("indices"))?.data,
            &self.get(&field("shape"))?.data,
        ) {
            (TensorData::U64(p), TensorData::U32(i), TensorData::U64(s)) if s.len() == 2 => (p, i, s),
            _ => return Err(self.bad(name, "malformed sparse matrix")),
        };
        let (_, data) = self.f32(&field("data"))?;
        let (rows, cols) = (shape[0] as usize, shape[1] as usize);
        let ok = indptr.len() == rows + 1
            && indptr.windows(2).all(|w| w[0] <= w[1])
            && indptr.last().copied() == Some(indices.len() as u64)
            && data.len() == indices.len()
            && indices.iter().all(|&c| (c as usize) < cols);
        if !ok {
            return Err(self.bad(name, "inconsistent sparse matrix"));
        }
        let mut r = Vec::with_capacity(indices.len());
        for row in 0..rows {
            r.extend(std::iter::repeat_n(row as u32, (indptr[row + 1] - indptr[row]) as usize));
        }
        Ok(Csr::from_triplets(rows, cols, &r, indices, &data))
    }
}

/// Stores `m` under `name` (see [`TensorReader::csr`]).
pub fn put_csr(tensors: &mut Tensors, name: &str, m: &Csr) {
    let t = |shape: Vec<usize>, data| Tensor { shape, data };
    tensors.insert(
        format!("{name}.indptr"),
        t(vec![m.n_rows() + 1], TensorData::U64(m.indptr().iter().map(|&x| x as u64).collect())),
    );
    tensors.insert(format!("{name}.indices"), t(vec![m.nnz()], TensorData::U32(m.indices().to_vec())));
    tensors.insert(format!("{name}.data"), Tensor::f32(m.data().to_vec()));
    tensors.insert(format!("{name}.shape"), t(vec![2], TensorData::U64(vec![m.n_rows() as u64, m.n_cols() as u64])));
}
