//! What the service holds: the loaded model (swapped whole on reload), the live interactions
//! recorded since the model was trained (by raw id, so they survive reloads), the log that
//! keeps them, and the metrics.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::RwLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use indexmap::{IndexMap, IndexSet};
use serde::Serialize;
use tandem_models::{top_k, Query, Scored};
use tandem_rank::model_dir::{load, Loaded};
use tandem_rank::TwoStage;

use crate::error::ServeError;
use crate::metrics::Metrics;
use crate::wal::{Event, Replay, Wal, WalOptions};
use tandem_models::index::{IndexKind, ItemIndex, IVF_PROBE_SHARE};

/// How the service runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The model directory (reloads read it again unless given another).
    pub model_dir: PathBuf,
    /// The interaction log (none: live interactions are kept in memory only).
    pub wal: Option<PathBuf>,
    /// Start despite a corrupt record in the middle of the log, moving it and what follows
    /// into a side file (`--wal-recover`).
    pub wal_recover: bool,
    /// Records after which the log is folded into its snapshot (0: never).
    pub wal_snapshot_every: u64,
    /// Directories `POST /admin/reload` may load from (default: the parent of `model_dir`).
    pub models_root: Option<PathBuf>,
    /// Candidate index for models with item vectors.
    pub index: IndexKind,
    /// Share of the IVF lists a query scans.
    pub ivf_probe: f64,
    /// Largest `k` a request may ask for (1000).
    pub max_k: usize,
    /// Most items an anonymous session or a single request may carry (1000).
    pub max_items: usize,
    /// Largest request body in bytes (1 MiB: room for --max-items ids of 256 characters).
    pub max_body: usize,
    /// When set, `POST /admin/reload` needs `Authorization: Bearer <token>`.
    pub admin_token: Option<String>,
}

impl Options {
    /// Defaults for a model directory.
    pub fn new(model_dir: PathBuf) -> Self {
        Options {
            model_dir,
            wal: None,
            wal_recover: false,
            wal_snapshot_every: WalOptions::default().snapshot_every,
            models_root: None,
            index: IndexKind::Exact,
            ivf_probe: IVF_PROBE_SHARE,
            max_k: 1000,
            max_items: 1000,
            max_body: 1024 * 1024,
            admin_token: None,
        }
    }

    /// Where reloads may load from: `models_root`, else the directory holding `model_dir`.
    pub fn models_root(&self) -> PathBuf {
        self.models_root.clone().unwrap_or_else(|| {
            let abs = self.model_dir.canonicalize().unwrap_or_else(|_| self.model_dir.clone());
            abs.parent().map_or_else(|| PathBuf::from("."), |p| p.to_path_buf())
        })
    }
}

/// A loaded model with what serving it needs.
pub struct Served {
    /// The model directory's contents.
    pub loaded: Loaded,
    /// Where it was loaded from.
    pub dir: PathBuf,
    /// Items by training count, most popular first (the fallback for unknown users).
    pub popular: Vec<Scored>,
    /// Candidate index over the model's item vectors, when it has them.
    pub index: Option<ItemIndex>,
    /// Unix seconds of the load.
    pub loaded_at: u64,
    /// Each item's id and title, lower-cased, for searches.
    pub search_keys: Vec<String>,
}

impl Served {
    /// Loads `dir` and builds the index of `kind` when the model has item vectors.
    pub fn load(dir: &std::path::Path, kind: IndexKind, probe_share: f64) -> Result<Served, ServeError> {
        let mut loaded = load(dir)?;
        // A pipeline indexes its own retrievers; a single model with vectors is indexed here.
        let inner = match TwoStage::of_mut(&mut *loaded.model) {
            Some(pipeline) => {
                pipeline.use_index(kind, probe_share);
                true
            }
            None => false,
        };
        let popular = loaded.popular();
        let index =
            if inner { None } else { loaded.model.embeddings().map(|e| ItemIndex::build(kind, e.items, probe_share)) };
        let loaded_at = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let search_keys = (0..loaded.items.len())
            .map(|i| {
                let title = loaded.item_info.get(i).and_then(|x| x.title.as_deref()).unwrap_or("");
                format!("{}\t{title}", loaded.items.raw(i as u32)).to_lowercase()
            })
            .collect();
        Ok(Served { loaded, dir: dir.to_path_buf(), popular, index, loaded_at, search_keys })
    }
}

/// The shared state of all requests.
pub struct AppState {
    /// The current model; a reload swaps it whole while requests in flight keep theirs.
    pub served: ArcSwap<Served>,
    /// Live interactions per raw user id, in arrival order (the latest `max_items` of each).
    pub live: RwLock<Live>,
    /// The interaction log.
    pub wal: Option<Wal>,
    /// Counters and histograms for /metrics.
    pub metrics: Metrics,
    /// How the service runs.
    pub options: Options,
    /// One reload at a time.
    pub reloading: tokio::sync::Mutex<()>,
}

impl AppState {
    /// Loads the model and replays the interaction log.
    pub fn new(options: Options) -> Result<AppState, ServeError> {
        if !(options.ivf_probe > 0.0 && options.ivf_probe <= 1.0) {
            return Err(ServeError::BadRequest(format!("ivf_probe must be in (0, 1] (got {})", options.ivf_probe)));
        }
        let served = Served::load(&options.model_dir, options.index, options.ivf_probe)?;
        let (wal, replay) = match &options.wal {
            Some(p) => {
                let wal_options = WalOptions {
                    recover: options.wal_recover,
                    max_per_user: options.max_items,
                    snapshot_every: options.wal_snapshot_every,
                };
                let (w, r) = Wal::open(p, wal_options)?;
                (Some(w), r)
            }
            None => (None, Replay::default()),
        };
        if replay.torn_bytes > 0 {
            eprintln!("interaction log: cut a torn last record ({} bytes, never acknowledged)", replay.torn_bytes);
        }
        if let Some(side) = &replay.quarantined {
            eprintln!("interaction log: a damaged part and everything after it moved to {}", side.display());
        }
        let mut live = Live::new(options.max_items);
        replay.histories.into_events().for_each(|e| live.push(e));
        let metrics = Metrics::new();
        metrics.live_interactions.set(live.len() as i64);
        Ok(AppState {
            served: ArcSwap::from_pointee(served),
            live: RwLock::new(live),
            wal,
            metrics,
            options,
            reloading: tokio::sync::Mutex::new(()),
        })
    }

    /// The live events of `user`.
    pub fn live_of(&self, user: &str) -> Vec<Event> {
        self.live.read().unwrap_or_else(|p| p.into_inner()).of(user)
    }

    /// Records events: on disk first (when there is a log), then in memory.
    pub fn record(&self, events: Vec<Event>) -> Result<(), ServeError> {
        if let Some(w) = &self.wal {
            w.append(&events)?;
        }
        let n = events.len() as i64;
        let mut live = self.live.write().unwrap_or_else(|p| p.into_inner());
        events.into_iter().for_each(|e| live.push(e));
        self.metrics.live_interactions.inc_by(n);
        Ok(())
    }
}

/// Live interactions: each user's latest `max` events (the log keeps them all; a query never
/// carries more than a request may), item ids interned. A steady stream of writes then
/// allocates nothing that lives long — a string per event, freed at some random later time
/// among the requests' short-lived allocations, fragmented the heap and the RSS crept up for
/// minutes though what was held was bounded.
pub struct Live {
    max: usize,
    users: HashMap<String, VecDeque<LiveEvent>>,
    items: IndexSet<String>,
}

#[derive(Clone, Copy)]
struct LiveEvent {
    item: u32,
    weight: f32,
    time: i64,
}

impl Live {
    /// Empty, keeping `max` events a user.
    pub fn new(max: usize) -> Self {
        Live { max, users: HashMap::new(), items: IndexSet::new() }
    }

    /// Records `event` after its user's others, dropping the user's oldest beyond the bound.
    pub fn push(&mut self, event: Event) {
        if self.max == 0 {
            return;
        }
        let item = match self.items.get_index_of(event.item.as_str()) {
            Some(k) => k,
            None => self.items.insert_full(event.item).0,
        } as u32;
        let live = LiveEvent { item, weight: event.weight, time: event.time };
        match self.users.get_mut(event.user.as_str()) {
            Some(q) => {
                if q.len() == self.max {
                    q.pop_front();
                }
                q.push_back(live);
            }
            None => {
                // The ring of a user holds `max` at most: it never grows after that.
                let mut q = VecDeque::with_capacity(self.max.min(64));
                q.push_back(live);
                self.users.insert(event.user, q);
            }
        }
    }

    /// The live events of `user`, oldest first.
    pub fn of(&self, user: &str) -> Vec<Event> {
        let Some(q) = self.users.get(user) else { return Vec::new() };
        let item = |k: u32| self.items.get_index(k as usize).cloned().unwrap_or_default();
        q.iter().map(|e| Event { user: user.to_string(), item: item(e.item), weight: e.weight, time: e.time }).collect()
    }

    /// Events held, all users together.
    pub fn len(&self) -> usize {
        self.users.values().map(VecDeque::len).sum()
    }

    /// Whether no event is held.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// One recommended item.
#[derive(Debug, Clone, Serialize)]
pub struct RecItem {
    /// Raw item id.
    pub item: String,
    /// The model's score.
    pub score: f32,
    /// Title, when the model directory has item metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Genres, likewise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub genres: Vec<String>,
}

impl Served {
    /// The answer entry of item index `i`.
    pub fn rec_item(&self, i: u32, score: f32) -> RecItem {
        let info = self.loaded.item_info.get(i as usize);
        RecItem {
            item: self.loaded.items.raw(i).to_string(),
            score,
            title: info.and_then(|x| x.title.clone()),
            genres: info.map_or_else(Vec::new, |x| x.genres.clone()),
        }
    }
}

/// A recommendation answer.
#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    /// The raw user id, when the request named one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Whether the model was trained with this user.
    pub known_user: bool,
    /// `popularity` when there was nothing to personalise from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<&'static str>,
    /// Best first.
    pub items: Vec<RecItem>,
    /// The history the answer used (training items, then live ones), when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<String>>,
    /// Request items the model does not know (left out of the history).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown_items: Vec<String>,
    /// Milliseconds per stage, and in all.
    pub timings_ms: IndexMap<String, f64>,
}

/// What to recommend for.
pub struct Ask<'a> {
    /// A raw user id (its training history and live interactions are used).
    pub user: Option<&'a str>,
    /// Live interactions of that user.
    pub live: &'a [Event],
    /// Extra items, oldest first (an anonymous session's).
    pub items: &'a [String],
    /// How many.
    pub k: usize,
    /// Leave out items of the history.
    pub exclude_seen: bool,
    /// Return the history used.
    pub include_history: bool,
}

/// Recommends with `served` (CPU-bound: callers run it off the async workers).
pub fn recommend(served: &Served, ask: &Ask<'_>) -> Recommendation {
    let start = Instant::now();
    let m = &served.loaded;
    let known = ask.user.and_then(|u| m.users.get(u));
    // The history in time order as far as it is known: training items, then live ones, then
    // the request's own; a sequence model reads the last as the most recent.
    let (mut items, mut weights): (Vec<u32>, Vec<f32>) = match known {
        Some(u) => {
            let (i, w) = m.history.row(u as usize);
            (i.to_vec(), w.to_vec())
        }
        None => (Vec::new(), Vec::new()),
    };
    let mut unknown_items = Vec::new();
    let extra = ask.live.iter().map(|e| (&e.item, e.weight)).chain(ask.items.iter().map(|i| (i, 1.0)));
    let mut fresh = false;
    for (raw, w) in extra {
        match m.items.get(raw) {
            Some(i) => {
                items.push(i);
                weights.push(w);
                fresh = true;
            }
            None => unknown_items.push(raw.clone()),
        }
    }
    let mut seen = items.clone();
    seen.sort_unstable();
    let keep = |i: u32| !(ask.exclude_seen && seen.binary_search(&i).is_ok());
    let mut timings = IndexMap::new();
    let (scored, fallback) = if items.is_empty() {
        let t = Instant::now();
        let top: Vec<Scored> = served.popular.iter().filter(|s| keep(s.item)).take(ask.k).copied().collect();
        timings.insert("fallback".to_string(), ms(t));
        (top, Some("popularity"))
    } else {
        // A known user without new items keeps the trained state; new items make it a new
        // history, folded in by the model.
        let query = Query { trained: if fresh { None } else { known }, items: &items, weights: &weights };
        match (&served.index, query.trained, m.model.embeddings()) {
            (Some(index), Some(u), Some(e)) => {
                let t = Instant::now();
                let top = index.top_k(e.users.row(u as usize), ask.k, &keep);
                timings.insert(format!("retrieval ({:?} index)", index.kind()).to_lowercase(), ms(t));
                (top, None)
            }
            _ => {
                let mut scores = vec![0f32; m.model.n_items()];
                let stages = match TwoStage::of(&*m.model) {
                    Some(pipeline) => pipeline.score_timed(&query, &mut scores),
                    None => {
                        let t = Instant::now();
                        m.model.score(&query, &mut scores);
                        vec![("scoring", t.elapsed().as_secs_f64())]
                    }
                };
                timings.extend(stages.into_iter().map(|(s, secs)| (s.to_string(), secs * 1e3)));
                let t = Instant::now();
                let top = top_k(&scores, ask.k, |i| scores[i as usize].is_finite() && keep(i));
                timings.insert("top_k".to_string(), ms(t));
                (top, None)
            }
        }
    };
    timings.insert("total".to_string(), ms(start));
    Recommendation {
        user: ask.user.map(str::to_string),
        known_user: known.is_some(),
        fallback,
        items: scored.iter().map(|s| served.rec_item(s.item, s.score)).collect(),
        history: ask.include_history.then(|| items.iter().map(|&i| m.items.raw(i).to_string()).collect()),
        unknown_items,
        timings_ms: timings,
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}
