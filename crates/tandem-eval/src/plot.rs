//! Metric-against-K plots as self-contained SVG (no fonts or system libraries needed).

use crate::metric::Metric;
use crate::report::Report;

const PALETTE: [&str; 8] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// One panel per metric (NDCG, HR, Precision, Recall, MRR, MAP), each a line per model of the
/// metric at every K of the report.
pub fn metrics_at_k_svg(report: &Report) -> String {
    let ks = &report.protocol.ks;
    let (pw, ph, pad) = (360.0, 240.0, 48.0);
    let legend_h = 24.0 + 18.0 * report.models.len() as f64;
    let (w, h) = (3.0 * pw, 2.0 * ph + legend_h);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for (pi, metric) in Metric::ALL.iter().enumerate() {
        let (ox, oy) = ((pi % 3) as f64 * pw, (pi / 3) as f64 * ph);
        let (x0, x1, y0, y1) = (ox + pad, ox + pw - 16.0, oy + ph - 32.0, oy + 28.0);
        let values: Vec<Vec<f64>> = report
            .models
            .values()
            .map(|m| ks.iter().map(|&k| m.metrics.get(&metric.at(k)).copied().unwrap_or(0.0)).collect())
            .collect();
        let ymax = values.iter().flatten().copied().fold(0.0, f64::max).max(1e-9) * 1.1;
        let x = |i: usize| {
            if ks.len() > 1 {
                x0 + (x1 - x0) * i as f64 / (ks.len() - 1) as f64
            } else {
                (x0 + x1) / 2.0
            }
        };
        let y = |v: f64| y0 - (y0 - y1) * v / ymax;
        s += &format!(
            "<text x=\"{}\" y=\"{}\" font-size=\"13\" text-anchor=\"middle\">{}@K</text>\n",
            (x0 + x1) / 2.0,
            oy + 18.0,
            metric.name()
        );
        s += &format!("<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"#333\"/>\n");
        s += &format!("<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{y1}\" stroke=\"#333\"/>\n");
        for t in 0..=4 {
            let v = ymax * t as f64 / 4.0;
            s += &format!(
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{v:.3}</text><line x1=\"{x0}\" y1=\"{yy}\" x2=\"{x1}\" y2=\"{yy}\" stroke=\"#eee\"/>\n",
                x0 - 4.0,
                y(v) + 4.0,
                yy = y(v)
            );
        }
        for (i, k) in ks.iter().enumerate() {
            s += &format!("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{k}</text>\n", x(i), y0 + 14.0);
        }
        for (mi, vals) in values.iter().enumerate() {
            let color = PALETTE[mi % PALETTE.len()];
            let pts: Vec<String> = vals.iter().enumerate().map(|(i, &v)| format!("{:.1},{:.1}", x(i), y(v))).collect();
            s += &format!(
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\n",
                pts.join(" ")
            );
            for (i, &v) in vals.iter().enumerate() {
                s += &format!("<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{color}\"/>\n", x(i), y(v));
            }
        }
    }
    let ly = 2.0 * ph + 12.0;
    for (mi, name) in report.models.keys().enumerate() {
        let color = PALETTE[mi % PALETTE.len()];
        let yy = ly + 18.0 * mi as f64;
        s += &format!(
            "<rect x=\"{pad}\" y=\"{yy}\" width=\"14\" height=\"10\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\">{}</text>\n",
            pad + 20.0,
            yy + 9.0,
            esc(name)
        );
    }
    s += "</svg>\n";
    s
}
