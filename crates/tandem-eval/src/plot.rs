//! Plots as self-contained SVG (no fonts or system libraries needed): metrics against K, and
//! training curves (loss and validation metric per epoch).

use crate::metric::Metric;
use crate::report::Report;

const PALETTE: [&str; 8] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const PANEL_W: f64 = 360.0;
const PANEL_H: f64 = 240.0;
const PAD: f64 = 48.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// One line of a panel: a colour index and (x, y) points.
struct Series {
    color: usize,
    points: Vec<(f64, f64)>,
}

/// Draws one panel at (`ox`, `oy`): title, axes, y grid, x tick labels and a polyline per series.
/// The y axis starts at 0 unless some value is negative.
fn panel(s: &mut String, (ox, oy): (f64, f64), title: &str, x_ticks: &[(f64, String)], series: &[Series]) {
    let (x0, x1, y0, y1) = (ox + PAD, ox + PANEL_W - 16.0, oy + PANEL_H - 32.0, oy + 28.0);
    let all = || series.iter().flat_map(|l| l.points.iter());
    let (xmin, xmax) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let ymax = all().map(|p| p.1).fold(0.0, f64::max).max(1e-9) * 1.1;
    let ymin = all().map(|p| p.1).fold(0.0, f64::min) * 1.1;
    let x = |v: f64| if xmax > xmin { x0 + (x1 - x0) * (v - xmin) / (xmax - xmin) } else { (x0 + x1) / 2.0 };
    let y = |v: f64| y0 - (y0 - y1) * (v - ymin) / (ymax - ymin);
    *s += &format!(
        "<text x=\"{}\" y=\"{}\" font-size=\"13\" text-anchor=\"middle\">{}</text>\n",
        (x0 + x1) / 2.0,
        oy + 18.0,
        esc(title)
    );
    *s += &format!("<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"#333\"/>\n");
    *s += &format!("<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{y1}\" stroke=\"#333\"/>\n");
    for t in 0..=4 {
        let v = ymin + (ymax - ymin) * t as f64 / 4.0;
        *s += &format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{v:.3}</text><line x1=\"{x0}\" y1=\"{yy}\" x2=\"{x1}\" y2=\"{yy}\" stroke=\"#eee\"/>\n",
            x0 - 4.0,
            y(v) + 4.0,
            yy = y(v)
        );
    }
    for (v, label) in x_ticks {
        *s += &format!("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{label}</text>\n", x(*v), y0 + 14.0);
    }
    for line in series {
        let color = PALETTE[line.color % PALETTE.len()];
        let pts: Vec<String> = line.points.iter().map(|&(a, b)| format!("{:.1},{:.1}", x(a), y(b))).collect();
        *s +=
            &format!("<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\n", pts.join(" "));
        for &(a, b) in &line.points {
            *s += &format!("<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{color}\"/>\n", x(a), y(b));
        }
    }
}

/// The SVG header for a `w` x `h` picture.
fn open(w: f64, h: f64) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    )
}

/// A colour key for `names` from height `top`, and the closing tag.
fn close_with_legend(mut s: String, top: f64, names: &[&str]) -> String {
    for (mi, name) in names.iter().enumerate() {
        let color = PALETTE[mi % PALETTE.len()];
        let yy = top + 18.0 * mi as f64;
        s += &format!(
            "<rect x=\"{PAD}\" y=\"{yy}\" width=\"14\" height=\"10\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\">{}</text>\n",
            PAD + 20.0,
            yy + 9.0,
            esc(name)
        );
    }
    s + "</svg>\n"
}

fn legend_height(n: usize) -> f64 {
    24.0 + 18.0 * n as f64
}

/// One panel per metric (NDCG, HR, Precision, Recall, MRR, MAP), each a line per model of the
/// metric at every K of the report (K evenly spaced).
pub fn metrics_at_k_svg(report: &Report) -> String {
    let ks = &report.protocol.ks;
    let names: Vec<&str> = report.models.keys().map(String::as_str).collect();
    let mut s = open(3.0 * PANEL_W, 2.0 * PANEL_H + legend_height(names.len()));
    let ticks: Vec<(f64, String)> = ks.iter().enumerate().map(|(i, k)| (i as f64, k.to_string())).collect();
    for (pi, metric) in Metric::ALL.iter().enumerate() {
        let series: Vec<Series> = report
            .models
            .values()
            .enumerate()
            .map(|(mi, m)| Series {
                color: mi,
                points: ks
                    .iter()
                    .enumerate()
                    .map(|(i, &k)| (i as f64, m.metrics.get(&metric.at(k)).copied().unwrap_or(0.0)))
                    .collect(),
            })
            .collect();
        let at = ((pi % 3) as f64 * PANEL_W, (pi / 3) as f64 * PANEL_H);
        panel(&mut s, at, &format!("{}@K", metric.name()), &ticks, &series);
    }
    close_with_legend(s, 2.0 * PANEL_H + 12.0, &names)
}

/// Training curves of the models trained in epochs: mean training loss per epoch and, where
/// validated, the validation metric per epoch. `None` when no model recorded epochs.
pub fn training_curves_svg(report: &Report) -> Option<String> {
    let trained: Vec<(usize, &str, &crate::ModelReport)> = report
        .models
        .iter()
        .enumerate()
        .filter(|(_, (_, m))| !m.training.is_empty())
        .map(|(i, (n, m))| (i, n.as_str(), m))
        .collect();
    if trained.is_empty() {
        return None;
    }
    let names: Vec<&str> = report.models.keys().map(String::as_str).collect();
    let mut s = open(2.0 * PANEL_W, PANEL_H + legend_height(names.len()));
    let last = trained.iter().flat_map(|t| t.2.training.iter().map(|e| e.epoch)).max().unwrap_or(1);
    let ticks: Vec<(f64, String)> = (1..=last)
        .filter(|e| last <= 10 || e % last.div_ceil(10) == 0 || *e == 1)
        .map(|e| (e as f64, e.to_string()))
        .collect();
    let curve = |f: &dyn Fn(&crate::EpochRecord) -> Option<f64>| -> Vec<Series> {
        trained
            .iter()
            .map(|(i, _, m)| Series {
                color: *i,
                points: m.training.iter().filter_map(|e| f(e).map(|v| (e.epoch as f64, v))).collect(),
            })
            .filter(|l| !l.points.is_empty())
            .collect()
    };
    panel(&mut s, (0.0, 0.0), "training loss", &ticks, &curve(&|e| Some(e.loss)));
    let metric = trained.iter().find_map(|t| t.2.training.iter().find_map(|e| e.valid_metric.clone()));
    let valid = curve(&|e| e.valid);
    if !valid.is_empty() {
        let title = format!("validation {}", metric.unwrap_or_default());
        panel(&mut s, (PANEL_W, 0.0), &title, &ticks, &valid);
    }
    Some(close_with_legend(s, PANEL_H + 12.0, &names))
}

/// The validation metric of each trial of a search, and the best so far, against the trial
/// number (failed trials left out).
pub fn trials_svg(metric: &str, trials: &[crate::search::Trial]) -> String {
    let points: Vec<(f64, f64)> = trials.iter().filter_map(|t| Some(((t.trial + 1) as f64, t.value?))).collect();
    let mut best = f64::NEG_INFINITY;
    let running: Vec<(f64, f64)> = points
        .iter()
        .map(|&(x, y)| {
            best = best.max(y);
            (x, best)
        })
        .collect();
    let last = trials.len().max(1);
    let ticks: Vec<(f64, String)> = (1..=last)
        .filter(|t| last <= 10 || t % last.div_ceil(10) == 0 || *t == 1)
        .map(|t| (t as f64, t.to_string()))
        .collect();
    let mut s = open(2.0 * PANEL_W, PANEL_H + legend_height(2));
    let series = [Series { color: 0, points }, Series { color: 1, points: running }];
    panel(&mut s, (0.0, 0.0), &format!("validation {metric} by trial"), &ticks, &series);
    close_with_legend(s, PANEL_H + 12.0, &["trial", "best so far"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EpochRecord, ModelReport, ProtocolInfo};

    fn report(training: Vec<EpochRecord>) -> Report {
        let model = ModelReport {
            kind: "mf".into(),
            params: serde_json::json!({}),
            metrics: [("NDCG@10".to_string(), 0.5)].into_iter().collect(),
            fit_seconds: 1.0,
            eval_seconds: 1.0,
            users: 3,
            new_users: 0,
            training,
            stage_seconds: Default::default(),
            feature_importance: Default::default(),
            diagnostics: None,
        };
        Report {
            tandem_version: "0".into(),
            data: serde_json::json!({}),
            protocol: ProtocolInfo {
                split: "s".into(),
                ranking: "full".into(),
                exclude_seen: true,
                candidates: "all".into(),
                sampling: None,
                ks: vec![5, 10],
                test_users: 3,
            },
            models: [("m<1>".to_string(), model)].into_iter().collect(),
        }
    }

    #[test]
    fn plots_escape_names_and_draw_one_line_per_panel_and_model() {
        let svg = metrics_at_k_svg(&report(vec![]));
        assert!(svg.contains("m&lt;1&gt;") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), Metric::ALL.len());
        assert!(training_curves_svg(&report(vec![])).is_none(), "no epochs, no curves");
        let epochs = (1..=3)
            .map(|epoch| EpochRecord {
                epoch,
                loss: 1.0 / epoch as f64,
                seconds: 0.1,
                examples: 10,
                valid_metric: (epoch > 1).then(|| "NDCG@10".to_string()),
                valid: (epoch > 1).then_some(0.1 * epoch as f64),
            })
            .collect();
        let svg = training_curves_svg(&report(epochs)).unwrap();
        assert_eq!(svg.matches("<polyline").count(), 2, "loss and validation");
        assert_eq!(svg.matches("<circle").count(), 3 + 2);
        assert!(svg.contains("validation NDCG@10"));
    }
}
