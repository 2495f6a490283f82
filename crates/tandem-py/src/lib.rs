//! `tandem._core`: the native half of the `tandem` Python package. It owns the crossing between
//! Python and the Rust core — raw ids in (int64 arrays or lists of strings), numpy arrays out,
//! the GIL released around every fit and batch — and nothing else: data is read by
//! `tandem-data`, models come from the one registry in `tandem-rank`, batches go through
//! `tandem_models::recommend_each` (what submissions and the server use), model directories
//! are `tandem_rank::model_dir`'s and `evaluate_split` is the CLI's own function. The Python
//! layer (`python/tandem`) turns pandas / pyarrow / scipy inputs into these calls.

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

use numpy::{IntoPyArray, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::{PyException, PyKeyError, PyValueError};
use pyo3::prelude::*;
use serde_json::Value;
use tandem_data::read::ItemInfo;
use tandem_data::{Csr, Dataset, IdMap, Interactions, NoProgress, Progress, SplitDir, SplitSpec};
use tandem_models::{recommend_each, Als, AlsParams, Factors, Histories, Query, Retriever, Scored, TrainSet};
use tandem_rank::model_dir::{self, DataParts};
use tandem_rank::{registry, Spec};

pyo3::create_exception!(
    _core,
    TandemError,
    PyException,
    "An error from the Tandem core: bad data, a failed fit, an unreadable model directory."
);

/// The core's error as a Python `TandemError`, with its whole chain of causes.
fn core_err(e: impl Into<anyhow::Error>) -> PyErr {
    TandemError::new_err(format!("{:#}", e.into()))
}

/// Progress bars on stderr (log lines when it is not a terminal), or none.
fn progress(quiet: bool) -> Box<dyn Progress + Send + Sync> {
    match quiet {
        true => Box::new(NoProgress),
        false => Box::new(tandem_cli::progress::Bars::new(false)),
    }
}

/// Raw ids as Python hands them over: an int64 array (formatted as the CLI reads integer
/// ids), or any sequence of strings.
fn raw_ids(obj: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if let Ok(a) = obj.extract::<PyReadonlyArray1<'_, i64>>() {
        return Ok(a.as_array().iter().map(|v| v.to_string()).collect());
    }
    obj.extract::<Vec<String>>()
        .map_err(|_| PyValueError::new_err("ids must be an int64 array or a sequence of strings"))
}

/// Looks up raw ids in `map`, naming the first unknown one.
fn indices(map: &IdMap, ids: &[String], what: &str) -> PyResult<Vec<u32>> {
    let mut out = Vec::with_capacity(ids.len());
    for (n, raw) in ids.iter().enumerate() {
        match map.get(raw) {
            Some(i) => out.push(i),
            None => {
                return Err(PyKeyError::new_err(format!(
                    "unknown {what} '{raw}' (position {n}; the model knows {} {what}s)",
                    map.len()
                )))
            }
        }
    }
    Ok(out)
}

/// The id maps and metadata several logs share (a split's parts share one).
struct Ids {
    users: IdMap,
    items: IdMap,
    item_info: Vec<ItemInfo>,
    user_info: Vec<ItemInfo>,
}

/// An interaction log in dense indices with its id maps: what `fit` takes.
#[pyclass(frozen, module = "tandem._core")]
struct Data {
    ids: Arc<Ids>,
    rows: Interactions,
}

impl Data {
    fn of(ds: Dataset) -> Data {
        let Dataset { users, items, interactions, item_info, user_info, .. } = ds;
        Data { ids: Arc::new(Ids { users, items, item_info, user_info }), rows: interactions }
    }
}

#[pymethods]
impl Data {
    /// A log from columns: raw user and item ids, optional unix-second times (default: the
    /// row position, as the CLI does for files without a time) and weights (default 1).
    #[staticmethod]
    #[pyo3(signature = (users, items, time=None, weight=None))]
    fn from_columns(
        users: &Bound<'_, PyAny>,
        items: &Bound<'_, PyAny>,
        time: Option<PyReadonlyArray1<'_, i64>>,
        weight: Option<PyReadonlyArray1<'_, f32>>,
    ) -> PyResult<Data> {
        let (users, items) = (raw_ids(users)?, raw_ids(items)?);
        let n = users.len();
        let time: Option<Vec<i64>> = time.map(|t| t.as_array().to_vec());
        let weight: Option<Vec<f32>> = weight.map(|w| w.as_array().to_vec());
        for (name, len) in [("items", items.len()), ("time", time.as_ref().map_or(n, Vec::len))] {
            if len != n {
                return Err(PyValueError::new_err(format!("{name} has {len} rows but users has {n}")));
            }
        }
        if let Some(w) = &weight {
            if w.len() != n {
                return Err(PyValueError::new_err(format!("weight has {} rows but users has {n}", w.len())));
            }
            if let Some(row) = w.iter().position(|v| !v.is_finite()) {
                return Err(PyValueError::new_err(format!("weight row {row} is {} (weights must be finite)", w[row])));
            }
        }
        let mut ds = Dataset::default();
        let mut rows = Interactions::with_capacity(n);
        for r in 0..n {
            rows.user.push(ds.users.get_or_insert(&users[r]));
            rows.item.push(ds.items.get_or_insert(&items[r]));
            rows.time.push(time.as_ref().map_or(r as i64, |t| t[r]));
            rows.weight.push(weight.as_ref().map_or(1.0, |w| w[r]));
        }
        ds.interactions = rows;
        ds.item_info.resize(ds.items.len(), Default::default());
        ds.user_info.resize(ds.users.len(), Default::default());
        Ok(Data::of(ds))
    }

    /// A log read as a config's `data:` map says (given as JSON: `format` and its keys).
    #[staticmethod]
    #[pyo3(signature = (source_json, quiet=false))]
    fn read(py: Python<'_>, source_json: &str, quiet: bool) -> PyResult<Data> {
        let value: Value =
            serde_json::from_str(source_json).map_err(|e| PyValueError::new_err(format!("data: {e}")))?;
        let source = tandem_cli::config::parse_source(value).map_err(|e| PyValueError::new_err(format!("{e:#}")))?;
        let bars = progress(quiet);
        let ds = py.detach(|| source.load(&*bars)).map_err(core_err)?;
        Ok(Data::of(ds))
    }

    /// A pre-split directory's parts (train, valid, test) over one id map; with `items`, a
    /// MovieLens item file's metadata.
    #[staticmethod]
    #[pyo3(signature = (dir, items=None, quiet=false))]
    fn read_split(py: Python<'_>, dir: &str, items: Option<&str>, quiet: bool) -> PyResult<(Data, Data, Data)> {
        let bars = progress(quiet);
        let sd = py
            .detach(|| -> anyhow::Result<SplitDir> {
                let mut sd = SplitDir::load(Path::new(dir), &*bars)?;
                if let Some(items) = items {
                    sd.read_item_metadata(Path::new(items), &*bars)?;
                }
                Ok(sd)
            })
            .map_err(core_err)?;
        let SplitDir { dataset, train, valid, test, .. } = sd;
        let whole = Data::of(dataset);
        let part = |rows: Interactions| Data { ids: whole.ids.clone(), rows };
        Ok((part(train), part(valid), part(test)))
    }

    /// This log split as a config's `split:` map says (given as JSON: `kind` and its keys) by
    /// the CLI's splitter: (train, valid, test, the split report as JSON), over this log's id maps.
    fn split(&self, py: Python<'_>, spec_json: &str) -> PyResult<(Data, Data, Data, String)> {
        let spec: SplitSpec =
            serde_json::from_str(spec_json).map_err(|e| PyValueError::new_err(format!("split: {e}")))?;
        let split = py
            .detach(|| spec.split(&self.rows, self.ids.users.len(), &self.ids.items))
            .map_err(|e| PyValueError::new_err(format!("split: {e}")))?;
        let report = serde_json::to_string(&split.report).map_err(core_err)?;
        let part = |rows: Interactions| Data { ids: self.ids.clone(), rows };
        Ok((part(split.train), part(split.valid), part(split.test), report))
    }

    /// This log's rows followed by `other`'s (which must share its id maps: parts of one split).
    fn concat(&self, other: &Data) -> PyResult<Data> {
        if !Arc::ptr_eq(&self.ids, &other.ids) {
            return Err(PyValueError::new_err("only parts of one split (one id map) can be joined"));
        }
        let mut rows = self.rows.clone();
        rows.extend(&other.rows);
        Ok(Data { ids: self.ids.clone(), rows })
    }

    /// Rows in the log.
    fn __len__(&self) -> usize {
        self.rows.len()
    }

    /// Users in the id map (a split's map covers all its parts).
    #[getter]
    fn n_users(&self) -> usize {
        self.ids.users.len()
    }

    /// Items in the id map.
    #[getter]
    fn n_items(&self) -> usize {
        self.ids.items.len()
    }

    /// Raw user ids by index.
    fn user_ids(&self) -> Vec<String> {
        self.ids.users.iter().map(str::to_string).collect()
    }

    /// Raw item ids by index.
    fn item_ids(&self) -> Vec<String> {
        self.ids.items.iter().map(str::to_string).collect()
    }

    /// The rows as dense indices: (user, item, time, weight) arrays.
    #[allow(clippy::type_complexity)]
    fn columns<'py>(
        &self,
        py: Python<'py>,
    ) -> (
        Bound<'py, numpy::PyArray1<u32>>,
        Bound<'py, numpy::PyArray1<u32>>,
        Bound<'py, numpy::PyArray1<i64>>,
        Bound<'py, numpy::PyArray1<f32>>,
    ) {
        let r = &self.rows;
        (
            r.user.clone().into_pyarray(py),
            r.item.clone().into_pyarray(py),
            r.time.clone().into_pyarray(py),
            r.weight.clone().into_pyarray(py),
        )
    }

    fn __repr__(&self) -> String {
        format!("Data({} rows, {} users, {} items)", self.rows.len(), self.ids.users.len(), self.ids.items.len())
    }
}

/// Best-first lists: (item index or -1, score or NaN), a row per query.
type Lists<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<f32>>);

/// A fitted or loaded model with the id maps and training histories it recommends with.
#[pyclass(frozen, module = "tandem._core")]
struct Model {
    model: Box<dyn Retriever>,
    users: IdMap,
    items: IdMap,
    history: Csr,
    item_info: Vec<ItemInfo>,
    popular: Vec<Scored>,
    /// Items with training interactions: the only ones recommended (as submissions do).
    catalogue: Vec<bool>,
}

impl Model {
    fn new(model: Box<dyn Retriever>, users: IdMap, items: IdMap, history: Csr, item_info: Vec<ItemInfo>) -> Model {
        let popular = tandem_models::popular_items(&history);
        let mut catalogue = vec![false; history.n_cols()];
        for &i in history.indices() {
            catalogue[i as usize] = true;
        }
        Model { model, users, items, history, item_info, popular, catalogue }
    }

    /// Best-first lists, `k` per query, as (item index or -1, score or NaN) matrices.
    fn lists<'py>(
        &self,
        py: Python<'py>,
        n: usize,
        k: usize,
        fill: impl FnOnce(&mut dyn FnMut(usize, &[Scored])) + Send,
    ) -> PyResult<Lists<'py>> {
        let (items, scores) = py.detach(|| {
            let mut items = vec![-1i64; n * k];
            let mut scores = vec![f32::NAN; n * k];
            fill(&mut |row, list| {
                for (j, s) in list.iter().take(k).enumerate() {
                    items[row * k + j] = s.item as i64;
                    scores[row * k + j] = s.score;
                }
            });
            (items, scores)
        });
        Ok((items.into_pyarray(py).reshape([n, k])?, scores.into_pyarray(py).reshape([n, k])?))
    }
}

#[pymethods]
impl Model {
    /// The model kind.
    #[getter]
    fn kind(&self) -> &'static str {
        self.model.kind()
    }

    /// The parameters as JSON.
    #[getter]
    fn params_json(&self) -> String {
        self.model.params().to_string()
    }

    /// Users the model knows.
    #[getter]
    fn n_users(&self) -> usize {
        self.users.len()
    }

    /// Items the model scores.
    #[getter]
    fn n_items(&self) -> usize {
        self.items.len()
    }

    /// Raw user ids by index.
    fn user_ids(&self) -> Vec<String> {
        self.users.iter().map(str::to_string).collect()
    }

    /// Raw item ids by index.
    fn item_ids(&self) -> Vec<String> {
        self.items.iter().map(str::to_string).collect()
    }

    /// Dense indices of raw user ids (KeyError on an unknown one).
    fn user_index(&self, users: &Bound<'_, PyAny>) -> PyResult<Vec<u32>> {
        indices(&self.users, &raw_ids(users)?, "user")
    }

    /// The `k` best items of each user (raw ids), best first, as (item index, score) matrices
    /// padded with -1 / NaN; `exclude_seen` leaves each user's training items out. Users
    /// without training rows get the most popular items, as everywhere in Tandem; so do users
    /// the model has never seen where `unknown_popular` (else they are a KeyError).
    #[pyo3(signature = (users, k=10, exclude_seen=true, unknown_popular=false))]
    fn recommend<'py>(
        &self,
        py: Python<'py>,
        users: &Bound<'py, PyAny>,
        k: usize,
        exclude_seen: bool,
        unknown_popular: bool,
    ) -> PyResult<Lists<'py>> {
        let raw = raw_ids(users)?;
        // Rows of known users, and the positions of unknown ones (popular lists).
        let (known, rows): (Vec<u32>, Vec<usize>) = if unknown_popular {
            raw.iter().enumerate().filter_map(|(n, r)| self.users.get(r).map(|u| (u, n))).unzip()
        } else {
            let users = indices(&self.users, &raw, "user")?;
            let rows = (0..users.len()).collect();
            (users, rows)
        };
        let histories = Histories::fitted(&self.history);
        let keep = |q: &Query<'_>, i: u32| {
            self.catalogue.get(i as usize).copied().unwrap_or(false)
                && !(exclude_seen && q.items.binary_search(&i).is_ok())
        };
        let n = raw.len();
        self.lists(py, n, k, |put| {
            if rows.len() < n {
                let popular: Vec<Scored> =
                    self.popular.iter().filter(|s| self.catalogue[s.item as usize]).take(k).copied().collect();
                let mut is_known = vec![false; n];
                rows.iter().for_each(|&r| is_known[r] = true);
                (0..n).filter(|&r| !is_known[r]).for_each(|r| put(r, &popular));
            }
            let mut next = rows.iter();
            let _ = recommend_each(&*self.model, &self.popular, histories, &known, k, &keep, |_, list, _| {
                if let Some(&row) = next.next() {
                    put(row, &list);
                }
                Ok::<_, Infallible>(())
            });
        })
    }

    /// The `k` items most similar to each of `items` (raw ids), as (item index, score) matrices.
    #[pyo3(signature = (items, k=10))]
    fn similar_items<'py>(&self, py: Python<'py>, items: &Bound<'py, PyAny>, k: usize) -> PyResult<Lists<'py>> {
        let items = indices(&self.items, &raw_ids(items)?, "item")?;
        self.lists(py, items.len(), k, |put| {
            use rayon::prelude::*;
            let lists: Vec<Vec<Scored>> = items.par_iter().map(|&i| self.model.similar_items(i, k)).collect();
            for (row, list) in lists.iter().enumerate() {
                put(row, list);
            }
        })
    }

    /// Scores of `items` for each of `users` (raw ids): a users x items float32 matrix.
    fn score<'py>(
        &self,
        py: Python<'py>,
        users: &Bound<'py, PyAny>,
        items: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let users = indices(&self.users, &raw_ids(users)?, "user")?;
        let items = indices(&self.items, &raw_ids(items)?, "item")?;
        let m = items.len();
        let out = py.detach(|| {
            use rayon::prelude::*;
            let histories = Histories::fitted(&self.history);
            let mut out = vec![0f32; users.len() * m];
            out.par_chunks_mut(m.max(1)).zip(&users).for_each(|(row, &u)| {
                self.model.score_items(&histories.query(u), &items, row);
            });
            out
        });
        out.into_pyarray(py).reshape([users.len(), m])
    }

    /// The user and item vectors the model scores with, when it has them (ALS, MF, two-tower).
    #[allow(clippy::type_complexity)]
    fn embeddings<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<Option<(Bound<'py, PyArray2<f32>>, Bound<'py, PyArray2<f32>>)>> {
        let Some(e) = self.model.embeddings() else { return Ok(None) };
        let matrix = |f: &Factors| f.as_slice().to_vec().into_pyarray(py).reshape([f.rows(), f.dim()]);
        Ok(Some((matrix(e.users)?, matrix(e.items)?)))
    }

    /// Writes a model directory (SPEC §8) that the CLI, the server and `load` read.
    #[pyo3(signature = (dir, name=None))]
    fn save(&self, py: Python<'_>, dir: &str, name: Option<&str>) -> PyResult<()> {
        let parts =
            DataParts { users: &self.users, items: &self.items, history: &self.history, item_info: &self.item_info };
        let name = name.unwrap_or(self.model.kind());
        py.detach(|| model_dir::save(Path::new(dir), name, &*self.model, &parts)).map_err(core_err)
    }

    fn __repr__(&self) -> String {
        format!("Model({}, {} users, {} items)", self.model.kind(), self.users.len(), self.items.len())
    }
}

/// Fits a model of `kind` with `params_json` (a JSON map of the kind's parameters) on `data`,
/// the GIL released.
#[pyfunction]
#[pyo3(signature = (kind, params_json, data, quiet=false))]
fn fit(py: Python<'_>, kind: &str, params_json: &str, data: &Data, quiet: bool) -> PyResult<Model> {
    let mut params: Value =
        serde_json::from_str(params_json).map_err(|e| PyValueError::new_err(format!("parameters: {e}")))?;
    let Some(map) = params.as_object_mut() else {
        return Err(PyValueError::new_err("parameters must be a map"));
    };
    map.insert("kind".into(), Value::String(kind.replace('-', "_")));
    let spec = Spec::from_json(params).map_err(|e| PyValueError::new_err(format!("{kind}: {e}")))?;
    spec.check().map_err(|e| PyValueError::new_err(format!("{kind}: {e}")))?;
    if data.rows.is_empty() {
        return Err(PyValueError::new_err("cannot fit on an empty log"));
    }
    let bars = progress(quiet);
    let ids = &data.ids;
    let (model, history) = py
        .detach(|| {
            let train = TrainSet::new(data.rows.clone(), ids.users.len(), ids.items.len());
            let side = tandem_data::Side { items: &ids.item_info, users: &ids.user_info };
            spec.fit(&train, side, &*bars).map(|m| (m, train.user_items))
        })
        .map_err(|e| core_err(anyhow::Error::new(e).context(format!("fitting model '{}'", spec.kind()))))?;
    Ok(Model::new(model, ids.users.clone(), ids.items.clone(), history, ids.item_info.clone()))
}

/// Loads a model directory (from `tandem evaluate-split --save`, `tandem run` or `Model.save`).
#[pyfunction]
fn load(py: Python<'_>, dir: &str) -> PyResult<Model> {
    let m = py.detach(|| model_dir::load(Path::new(dir))).map_err(core_err)?;
    Ok(Model::new(m.model, m.users, m.items, m.history, m.item_info))
}

/// An ALS model from factors trained elsewhere (Spark MLlib): raw user ids with their rows of
/// `user_factors`, raw item ids with theirs. The model's histories are either the training
/// pairs (`pair_users`, `pair_items`, raw ids; the id maps are then the factors' ids), or
/// `data`, the same log read by Tandem: its id maps and rows are taken whole, so the model is
/// one of that data (`evaluate-split --load` accepts it) and ids without factors get zero
/// vectors.
#[pyfunction]
#[pyo3(signature = (users, user_factors, items, item_factors, params_json, pair_users=None, pair_items=None, data=None))]
#[allow(clippy::too_many_arguments)]
fn als_from_factors(
    users: &Bound<'_, PyAny>,
    user_factors: PyReadonlyArray2<'_, f32>,
    items: &Bound<'_, PyAny>,
    item_factors: PyReadonlyArray2<'_, f32>,
    params_json: &str,
    pair_users: Option<&Bound<'_, PyAny>>,
    pair_items: Option<&Bound<'_, PyAny>>,
    data: Option<&Data>,
) -> PyResult<Model> {
    let (users, items) = (raw_ids(users)?, raw_ids(items)?);
    let (uf, vf) = (user_factors.as_array(), item_factors.as_array());
    if uf.nrows() != users.len() || vf.nrows() != items.len() || uf.ncols() != vf.ncols() {
        return Err(PyValueError::new_err(format!(
            "factor shapes {:?} and {:?} do not fit {} users and {} items with one dimension",
            uf.shape(),
            vf.shape(),
            users.len(),
            items.len()
        )));
    }
    let mut params: AlsParams =
        serde_json::from_str(params_json).map_err(|e| PyValueError::new_err(format!("ALS parameters: {e}")))?;
    params.factors = uf.ncols();
    let (umap, imap, history, item_info) = match (data, pair_users, pair_items) {
        (Some(d), None, None) => {
            let train = TrainSet::new(d.rows.clone(), d.ids.users.len(), d.ids.items.len());
            (d.ids.users.clone(), d.ids.items.clone(), train.user_items, d.ids.item_info.clone())
        }
        (None, Some(pu), Some(pi)) => {
            let (mut umap, mut imap) = (IdMap::new(), IdMap::new());
            users.iter().for_each(|r| _ = umap.get_or_insert(r));
            items.iter().for_each(|r| _ = imap.get_or_insert(r));
            let pu = indices(&umap, &raw_ids(pu)?, "user")?;
            let pi = indices(&imap, &raw_ids(pi)?, "item")?;
            if pu.len() != pi.len() {
                return Err(PyValueError::new_err("pair_users and pair_items differ in length"));
            }
            let history = Csr::from_triplets(umap.len(), imap.len(), &pu, &pi, &vec![1.0; pu.len()]);
            let n_items = imap.len();
            (umap, imap, history, vec![ItemInfo::default(); n_items])
        }
        _ => return Err(PyValueError::new_err("give either pair_users and pair_items, or data")),
    };
    // Factors by the maps' indices; an id twice or unknown to the maps is refused.
    let place = |map: &IdMap, ids: &[String], a: numpy::ndarray::ArrayView2<'_, f32>, what: &str| {
        let dim = a.ncols();
        let mut out = vec![0f32; map.len() * dim];
        let mut seen = vec![false; map.len()];
        for (row, idx) in indices(map, ids, what)?.into_iter().enumerate() {
            if std::mem::replace(&mut seen[idx as usize], true) {
                return Err(PyValueError::new_err(format!("{what} '{}' has two rows of factors", ids[row])));
            }
            out[idx as usize * dim..][..dim].iter_mut().zip(a.row(row)).for_each(|(o, &v)| *o = v);
        }
        Ok(Factors::from_vec(map.len(), dim, out))
    };
    let model = Als::from_parts(params, place(&umap, &users, uf, "user")?, place(&imap, &items, vf, "item")?);
    Ok(Model::new(Box::new(model), umap, imap, history, item_info))
}

#[pyfunction]
#[pyo3(signature = (split_dir, kind, params_json, out_dir, ks, load_dir=None, items=None, train_with_valid=false, quiet=false))]
#[allow(clippy::too_many_arguments)]
fn evaluate_split(
    py: Python<'_>,
    split_dir: &str,
    kind: &str,
    params_json: &str,
    out_dir: &str,
    ks: Vec<usize>,
    load_dir: Option<&str>,
    items: Option<&str>,
    train_with_valid: bool,
    quiet: bool,
) -> PyResult<()> {
    let params: serde_json::Map<String, Value> =
        serde_json::from_str(params_json).map_err(|e| PyValueError::new_err(format!("parameters: {e}")))?;
    // The CLI's `--param KEY=VALUE` reads VALUE as YAML, of which JSON is a part.
    let params: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let metric: tandem_eval::MetricAt = "NDCG@10".parse().map_err(|e: String| PyValueError::new_err(e))?;
    let opts = tandem_cli::commands::SplitEval {
        ks: &ks,
        valid_metric: Some(metric),
        save: None,
        load: load_dir.map(Path::new),
        train_with_valid,
        items: items.map(Path::new),
        diagnostics: false,
        ratings: None,
        explicit_threshold: 2.0,
        print: !quiet,
    };
    let bars = progress(quiet);
    py.detach(|| {
        tandem_cli::commands::evaluate_split(Path::new(split_dir), kind, &params, Path::new(out_dir), &opts, &*bars)
    })
    .map_err(core_err)
}

/// Every model kind with its one-line description.
#[pyfunction]
fn kinds() -> Vec<(&'static str, &'static str)> {
    registry::KINDS.iter().map(|k| (k.name, k.summary)).collect()
}

/// The module.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("TandemError", m.py().get_type::<TandemError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Data>()?;
    m.add_class::<Model>()?;
    for f in [
        wrap_pyfunction!(fit, m)?,
        wrap_pyfunction!(load, m)?,
        wrap_pyfunction!(als_from_factors, m)?,
        wrap_pyfunction!(evaluate_split, m)?,
        wrap_pyfunction!(kinds, m)?,
    ] {
        m.add_function(f)?;
    }
    Ok(())
}
