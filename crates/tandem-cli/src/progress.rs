//! Progress bars on the terminal (hidden when stderr is not one).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tandem_data::{Progress, ProgressStep};

/// Draws an indicatif bar per step.
pub struct Bars {
    hidden: bool,
}

impl Bars {
    /// Bars on stderr, or none with `quiet`.
    pub fn new(quiet: bool) -> Self {
        Bars { hidden: quiet }
    }
}

struct Bar(ProgressBar, String);

impl ProgressStep for Bar {
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }

    fn message(&self, text: &str) {
        self.0.set_message(format!("{}  {text}", self.1));
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
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
        Box::new(Bar(bar, label.to_string()))
    }
}
