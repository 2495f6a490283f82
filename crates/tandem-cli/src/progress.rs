//! Progress on stderr: a bar per step on a terminal; elsewhere (a pipeline, CI, a log file) a
//! line per step every few seconds with done/total, rate and ETA, so a long run is never silent.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tandem_data::{Progress, ProgressStep};

/// Draws an indicatif bar per step, or logs lines when stderr is not a terminal.
pub struct Bars {
    hidden: bool,
    /// Seconds between log lines when stderr is not a terminal (`None` on a terminal).
    log_every: Option<Duration>,
}

impl Bars {
    /// Progress on stderr, or none with `quiet`. Off a terminal, lines come every
    /// `TANDEM_PROGRESS_SECONDS` seconds (default 10).
    pub fn new(quiet: bool) -> Self {
        let seconds = std::env::var("TANDEM_PROGRESS_SECONDS").ok().and_then(|s| s.parse::<f64>().ok());
        let log = !quiet && !std::io::stderr().is_terminal();
        Bars {
            hidden: quiet || log,
            log_every: log.then(|| Duration::from_secs_f64(seconds.unwrap_or(10.0).max(0.01))),
        }
    }
}

struct Bar {
    bar: ProgressBar,
    label: String,
    log: Option<Log>,
}

/// When a step last logged, and how often it may.
struct Log {
    start: Instant,
    last: Mutex<Instant>,
    every: Duration,
}

impl Bar {
    /// `label: done/total (pct), rate/s, ETA` as a log line.
    fn line(&self, log: &Log, last: bool) -> String {
        let (done, total) = (self.bar.position(), self.bar.length().unwrap_or(0));
        let secs = log.start.elapsed().as_secs_f64();
        let rate = done as f64 / secs.max(1e-9);
        let mut line = format!("[{secs:7.1}s] {}: {done}", self.label);
        if total > 0 {
            line += &format!("/{total} ({:.0}%)", 100.0 * done as f64 / total as f64);
        }
        line += &match rate {
            r if r < 10.0 => format!(", {rate:.2}/s"),
            _ => format!(", {rate:.0}/s"),
        };
        if last {
            line += ", done";
        } else if total > done && rate > 0.0 {
            line += &format!(", ETA {:.0}s", (total - done) as f64 / rate);
        }
        if let Some(msg) = self.bar.message().split_once("  ").map(|m| m.1.to_string()) {
            line += &format!("  {msg}");
        }
        line
    }
}

impl ProgressStep for Bar {
    fn inc(&self, n: u64) {
        self.bar.inc(n);
        let Some(log) = &self.log else { return };
        // One thread logs; the others carry on.
        if let Ok(mut last) = log.last.try_lock() {
            if last.elapsed() >= log.every {
                *last = Instant::now();
                eprintln!("{}", self.line(log, false));
            }
        }
    }

    fn message(&self, text: &str) {
        self.bar.set_message(format!("{}  {text}", self.label));
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        // Steps that took a while say that they ended, and at what rate (read before finishing:
        // that moves the bar to its total, and a step may end early, as early stopping does).
        let closing = self.log.as_ref().filter(|l| l.start.elapsed() >= l.every).map(|log| self.line(log, true));
        self.bar.finish_and_clear();
        if let Some(line) = closing {
            eprintln!("{line}");
        }
    }
}

impl Progress for Bars {
    fn step(&self, label: &str, total: u64) -> Box<dyn ProgressStep + '_> {
        let bar = if total > 0 { ProgressBar::new(total) } else { ProgressBar::new_spinner() };
        if self.hidden {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        let template = if label.starts_with("reading") {
            "{msg:30} [{bar:30}] {bytes}/{total_bytes} ({eta})"
        } else if label.contains("epoch") {
            // Training steps carry loss and throughput in the message.
            "[{bar:30}] {pos}/{len} ({eta})  {msg}"
        } else {
            "{msg:30} [{bar:30}] {pos}/{len} ({eta})"
        };
        bar.set_style(ProgressStyle::with_template(template).expect("valid template").progress_chars("=> "));
        bar.set_message(label.to_string());
        let log = self.log_every.map(|every| Log { start: Instant::now(), last: Mutex::new(Instant::now()), every });
        Box::new(Bar { bar, label: label.to_string(), log })
    }
}
