//! The model-kind contract. A model kind is its parameter struct: the keys a config writes (with
//! their defaults, through `Default` and serde), the range checks, how it fits, how a saved one
//! loads, and the search space tuning explores — all in the model's own file, by implementing
//! [`ModelParams`]. The registry (`tandem_rank::registry`) lists the kinds by name: adding a
//! model is its file plus one line there.

use std::any::Any;
use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tandem_data::Progress;
use tandem_data::Side;

use crate::artifact::Tensors;
use crate::error::{ModelError, Result};
use crate::fit::ValidateRetriever;
use crate::retriever::{Retriever, TrainSet};

/// What fitting a model gets.
pub struct Fit<'a> {
    /// The kind being fitted (a parameter struct may serve several).
    pub kind: &'a str,
    /// The training rows and matrix.
    pub train: &'a TrainSet,
    /// Item metadata and user attributes by index (may be empty): rankers, segment and
    /// product-group sources read them.
    pub side: Side<'a>,
    /// Where progress goes.
    pub progress: &'a dyn Progress,
    /// For models trained in epochs: called after each epoch (the best is kept, training
    /// stops early); the others ignore it.
    pub validate: Option<&'a mut ValidateRetriever<'a>>,
}

/// One dimension of a kind's search space, as tuning samples it.
#[derive(Debug, Clone, PartialEq)]
pub struct Dim {
    /// The parameter's key.
    pub key: &'static str,
    /// Its values.
    pub range: Range,
    /// Searched only when validation holds out what users do next (their last rows or days):
    /// recency weighting, which a random share of each user's rows cannot reward.
    pub next_items: bool,
    /// Searched relative to another searched key: the sampled value `v` becomes
    /// `v · (1 + that key's value)`. ALS's regularisation per unit of confidence `1 + alpha`:
    /// where one moves the other must follow, and a ridge is hard to search along.
    pub per_one_plus: Option<&'static str>,
}

/// The values a searched parameter takes.
#[derive(Debug, Clone, PartialEq)]
pub enum Range {
    /// Integers from `lo` to `hi` (inclusive), uniformly or on a log scale.
    Int {
        /// Lowest value.
        lo: i64,
        /// Highest value.
        hi: i64,
        /// Sample the logarithm uniformly.
        log: bool,
    },
    /// Reals from `lo` to `hi`, uniformly or on a log scale.
    Float {
        /// Lowest value.
        lo: f64,
        /// Highest value.
        hi: f64,
        /// Sample the logarithm uniformly.
        log: bool,
    },
    /// One of these values.
    Choice(&'static [&'static str]),
}

impl Dim {
    /// An integer parameter.
    pub const fn int(key: &'static str, lo: i64, hi: i64, log: bool) -> Dim {
        Dim { key, range: Range::Int { lo, hi, log }, next_items: false, per_one_plus: None }
    }

    /// A real parameter.
    pub const fn float(key: &'static str, lo: f64, hi: f64, log: bool) -> Dim {
        Dim { key, range: Range::Float { lo, hi, log }, next_items: false, per_one_plus: None }
    }

    /// A choice among names.
    pub const fn choice(key: &'static str, values: &'static [&'static str]) -> Dim {
        Dim { key, range: Range::Choice(values), next_items: false, per_one_plus: None }
    }

    /// The same dimension, searched as its value over `1 + key`'s (another dimension of the
    /// same space; when `key` is not searched, as its value).
    pub const fn per_one_plus(self, key: &'static str) -> Dim {
        Dim { per_one_plus: Some(key), ..self }
    }

    /// The same dimension, searched only when validation holds out each user's next items.
    pub const fn next_items(self) -> Dim {
        Dim { next_items: true, ..self }
    }
}

/// A model kind's parameters, and everything the kind does with them. One struct may serve
/// several kinds (item and user kNN; NCF and NeuMF): `kind` says which.
pub trait ModelParams:
    Serialize + DeserializeOwned + Default + Clone + Debug + PartialEq + Send + Sync + 'static
{
    /// Checks every parameter's range, naming the key of the first that is out of it.
    fn check(&self) -> Result<()>;

    /// Fits a model of `fit.kind` on `fit.train`.
    fn fit(&self, fit: &mut Fit<'_>) -> Result<Box<dyn Retriever>>;

    /// Rebuilds a saved model of `kind` from its artifact's parameters and tensors.
    fn load(kind: &str, params: Value, tensors: &Tensors) -> Result<Box<dyn Retriever>>;

    /// The parameters tuning searches, with their ranges (none by default).
    fn space() -> Vec<Dim> {
        Vec::new()
    }
}

/// A saved model's parameters as `P`, or an artifact error when this version of Tandem reads
/// them differently.
pub fn saved_params<P: DeserializeOwned>(kind: &str, params: Value) -> Result<P> {
    let params = if params.is_null() { Value::Object(Default::default()) } else { params };
    serde_json::from_value(params).map_err(|e| ModelError::Artifact {
        path: format!("{kind} model"),
        message: format!("parameters do not match this version of Tandem: {e}"),
    })
}

/// A kind's parameters behind a pointer: what a registry entry parses into.
pub trait DynParams: Debug + Send + Sync {
    /// The parameters as a config writes them (without `kind`).
    fn to_json(&self) -> Value;
    /// [`ModelParams::check`].
    fn check(&self) -> Result<()>;
    /// [`ModelParams::fit`].
    fn fit(&self, fit: &mut Fit<'_>) -> Result<Box<dyn Retriever>>;
    /// A copy.
    fn clone_box(&self) -> Box<dyn DynParams>;
    /// For reading a kind's own parameters back (`downcast_ref`).
    fn as_any(&self) -> &dyn Any;
    /// For changing a kind's own parameters.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<P: ModelParams> DynParams for P {
    fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("parameters serialise")
    }
    fn check(&self) -> Result<()> {
        ModelParams::check(self)
    }
    fn fit(&self, fit: &mut Fit<'_>) -> Result<Box<dyn Retriever>> {
        ModelParams::fit(self, fit)
    }
    fn clone_box(&self) -> Box<dyn DynParams> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// One registry entry: a kind's name, its one-line summary, and its parameter type's
/// functions.
#[derive(Clone, Copy)]
pub struct Kind {
    /// The `kind` tag configs write.
    pub name: &'static str,
    /// What it is, in one line.
    pub summary: &'static str,
    parse: fn(Value) -> serde_json::Result<Box<dyn DynParams>>,
    defaults: fn() -> Value,
    load: fn(&str, Value, &Tensors) -> Result<Box<dyn Retriever>>,
    space: fn() -> Vec<Dim>,
}

impl Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kind").field("name", &self.name).finish()
    }
}

fn parse<P: ModelParams>(v: Value) -> serde_json::Result<Box<dyn DynParams>> {
    serde_json::from_value::<P>(v).map(|p| Box::new(p) as Box<dyn DynParams>)
}

fn defaults<P: ModelParams>() -> Value {
    serde_json::to_value(P::default()).expect("parameters serialise")
}

impl Kind {
    /// The entry of kind `name`, whose parameters are `P`.
    pub const fn of<P: ModelParams>(name: &'static str, summary: &'static str) -> Kind {
        Kind { name, summary, parse: parse::<P>, defaults: defaults::<P>, load: P::load, space: P::space }
    }

    /// Parameters from a config's map (without `kind`), unknown keys refused.
    pub fn parse(&self, params: Value) -> serde_json::Result<Box<dyn DynParams>> {
        (self.parse)(params)
    }

    /// Every parameter with its default value.
    pub fn defaults(&self) -> Value {
        (self.defaults)()
    }

    /// Rebuilds a saved model of this kind.
    pub fn load(&self, params: Value, tensors: &Tensors) -> Result<Box<dyn Retriever>> {
        (self.load)(self.name, params, tensors)
    }

    /// The parameters tuning searches.
    pub fn space(&self) -> Vec<Dim> {
        (self.space)()
    }
}
