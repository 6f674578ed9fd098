//! SVG: last-wake latency (median and p99) against pollers, one curve per
//! results file, with the rows where wake-ups were missed marked.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// What a plot reads of a results file (any of its versions: every field
/// may be missing).
#[derive(Deserialize)]
struct PlotInput {
    label: Option<String>,
    #[serde(default)]
    latency: Vec<PlotRow>,
}

#[derive(Deserialize)]
struct PlotRow {
    pollers: Option<f64>,
    missed_wakes: Option<f64>,
    edges_measured: Option<f64>,
    edges: Option<f64>,
    last_us: Option<PlotStats>,
}

#[derive(Deserialize)]
struct PlotStats {
    median: Option<f64>,
    p99: Option<f64>,
}

/// One implementation's curve: (pollers, last-wake median µs, p99 µs).
pub struct Series {
    label: String,
    points: Vec<(f64, f64, f64)>,
    /// Rows where some poller missed an edge: (pollers, missed wake-ups,
    /// edges measured).
    missed: Vec<(f64, f64, f64)>,
}

impl Series {
    /// The curve of a results document; `fallback` names it when the
    /// document has no label.
    pub fn from_json(doc: Value, fallback: &str) -> Result<Series, String> {
        let input: PlotInput = serde_json::from_value(doc).map_err(|e| format!("JSON: {e}"))?;
        let mut points = Vec::new();
        let mut missed = Vec::new();
        for r in input.latency {
            let m = r.missed_wakes.unwrap_or(0.0);
            if let Some(p) = r.pollers
                && m > 0.0
            {
                missed.push((p, m, r.edges_measured.or(r.edges).unwrap_or(0.0)));
            }
            let median = r.last_us.as_ref().and_then(|l| l.median);
            let p99 = r.last_us.as_ref().and_then(|l| l.p99);
            if let (Some(p), Some(med)) = (r.pollers, median)
                && p > 0.0
                && med > 0.0
            {
                points.push((p, med, p99.unwrap_or(med).max(med)));
            }
        }
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(Series {
            label: input.label.unwrap_or_else(|| fallback.to_string()),
            points,
            missed,
        })
    }
}

/// --plot: the series of several results files on one chart.
pub fn plot_mode(files: &[PathBuf], svg: Option<&Path>) -> Result<(), String> {
    let svg = svg.ok_or("--plot needs --svg FILE")?;
    let mut series = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let doc: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", f.display()))?;
        let fallback = f.file_stem().unwrap_or_default().to_string_lossy();
        let s = Series::from_json(doc, &fallback).map_err(|e| format!("{}: {e}", f.display()))?;
        println!("{}: {} points", s.label, s.points.len());
        series.push(s);
    }
    write_svg(svg, &series, "GPIO sysfs edge → wake-up latency")
}

pub fn write_svg(path: &Path, series: &[Series], title: &str) -> Result<(), String> {
    std::fs::write(path, svg_plot(series, title))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
fn svg_plot(series: &[Series], title: &str) -> String {
    const W: f64 = 860.0;
    const H: f64 = 520.0;
    const L: f64 = 90.0;
    const R: f64 = 30.0;
    const T: f64 = 60.0;
    const B: f64 = 70.0;
    const COLORS: [&str; 8] = [
        "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    ];
    let all: Vec<&(f64, f64, f64)> = series.iter().flat_map(|s| &s.points).collect();
    // x positions also for rows that only have missed wake-ups
    let missed_xs = series.iter().flat_map(|s| s.missed.iter().map(|m| m.0));
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(svg, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="28" text-anchor="middle" font-size="16" font-weight="bold">{}</text>"#,
        W / 2.0,
        esc(title)
    );
    if all.is_empty() {
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">no latency data</text></svg>"#,
            W / 2.0,
            H / 2.0
        );
        return svg;
    }
    // x: log2(pollers); y: log10(µs), whole decades.
    let xs_all: Vec<f64> = all.iter().map(|p| p.0).chain(missed_xs).collect();
    let xmin = xs_all.iter().copied().fold(f64::MAX, f64::min).max(1.0);
    let xmax = xs_all.iter().copied().fold(0.0, f64::max).max(xmin * 2.0);
    let ylo = all.iter().map(|p| p.1).fold(f64::MAX, f64::min).max(0.01);
    let yhi = all.iter().map(|p| p.2).fold(0.0, f64::max).max(ylo * 10.0);
    let (d0, d1) = (ylo.log10().floor(), yhi.log10().ceil());
    let px = |x: f64| L + (x.log2() - xmin.log2()) / (xmax.log2() - xmin.log2()) * (W - L - R);
    let py = |y: f64| T + (d1 - y.max(1e-9).log10()) / (d1 - d0) * (H - T - B);
    // Grid and axes.
    for d in (d0 as i32)..=(d1 as i32) {
        let y = py(10f64.powi(d));
        let _ = writeln!(
            svg,
            r##"<line x1="{L}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/>"##,
            W - R
        );
        let label = if d >= 3 {
            format!("{} ms", 10f64.powi(d - 3))
        } else {
            format!("{} µs", 10f64.powi(d))
        };
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{label}</text>"#,
            L - 8.0,
            y + 4.0
        );
    }
    let mut xs: Vec<f64> = xs_all.clone();
    xs.sort_by(|a, b| a.total_cmp(b));
    xs.dedup();
    for x in xs {
        let gx = px(x);
        let _ = writeln!(
            svg,
            r##"<line x1="{gx:.1}" y1="{T}" x2="{gx:.1}" y2="{:.1}" stroke="#eee"/>"##,
            H - B
        );
        let _ = writeln!(
            svg,
            r#"<text x="{gx:.1}" y="{:.1}" text-anchor="middle">{x}</text>"#,
            H - B + 18.0
        );
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{L}" y="{T}" width="{:.1}" height="{:.1}" fill="none" stroke="#444"/>"##,
        W - L - R,
        H - T - B
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">pollers (open value files, log scale)</text>"#,
        L + (W - L - R) / 2.0,
        H - 22.0
    );
    let _ = writeln!(
        svg,
        r#"<text transform="translate(22,{:.1}) rotate(-90)" text-anchor="middle">edge → last wake-up (log scale)</text>"#,
        T + (H - T - B) / 2.0
    );
    // Curves: median solid with dots, p99 dashed.
    for (i, s) in series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let line = |k: fn(&(f64, f64, f64)) -> f64| {
            s.points
                .iter()
                .map(|p| format!("{:.1},{:.1}", px(p.0), py(k(p))))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2.5"/>"#,
            line(|p| p.1)
        );
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="1.5" stroke-dasharray="6,4" opacity="0.7"/>"#,
            line(|p| p.2)
        );
        for p in &s.points {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{c}"><title>{}: {} pollers, median {:.1} µs, p99 {:.1} µs</title></circle>"#,
                px(p.0),
                py(p.1),
                esc(&s.label),
                p.0,
                p.1,
                p.2
            );
        }
        let ly = T + 18.0 + 20.0 * i as f64;
        let note = if s.missed.is_empty() {
            String::new()
        } else {
            " (✗ N: N wake-ups missed, i.e. not within 1 s)".to_string()
        };
        let _ = writeln!(
            svg,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{c}" stroke-width="2.5"/><text x="{:.1}" y="{:.1}">{}{}</text>"#,
            L + 12.0,
            L + 40.0,
            L + 46.0,
            ly + 4.0,
            esc(&s.label),
            esc(&note)
        );
        // Rows with missed wake-ups: a cross and the count, near the
        // bottom of the plot, one line per series.
        for &(p, m, e) in &s.missed {
            let x = px(p);
            let y = H - B - 10.0 - 16.0 * i as f64;
            let anchor = if x > W - R - 120.0 { "end" } else { "start" };
            let dx = if anchor == "end" { -8.0 } else { 8.0 };
            let _ = writeln!(
                svg,
                r#"<g><title>{}: {p} pollers, {m} wake-ups missed over {e} edges</title><text x="{x:.1}" y="{y:.1}" text-anchor="middle" fill="{c}" font-weight="bold">✗</text><text x="{:.1}" y="{y:.1}" text-anchor="{anchor}" fill="{c}" font-size="11">{m}</text></g>"#,
                esc(&s.label),
                x + dx,
            );
        }
    }
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">solid: median, dashed: p99</text>"##,
        W - R - 8.0,
        T + 18.0
    );
    svg.push_str("</svg>\n");
    svg
}
