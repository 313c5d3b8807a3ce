//! What `osprey tune run` shows of an experiment besides its trials JSON: a progress line per
//! finished trial while it runs, and at the end, on request, a CSV file (one row per trial) and
//! a self-contained HTML page (inline SVG, nothing fetched): the objective per trial with the
//! best so far, and a parallel-coordinates view of the parameters and the objective.

use super::experiment::Plan;
use super::local::{Report, Trial, TuneError};
use super::space::{Distribution, Domain};
use std::fmt::Write as _;
use std::path::Path;

/// The objective of a trial, when it reported one.
fn objective(t: &Trial, plan: &Plan) -> Option<f64> {
    t.metrics
        .iter()
        .find(|m| m.name == plan.metric)
        .map(|m| m.value)
}

/// States whose objective counts towards the best (Katib's currentOptimalTrial).
fn counts(t: &Trial) -> bool {
    matches!(t.state.as_str(), "Succeeded" | "EarlyStopped")
}

fn better(plan: &Plan, a: f64, b: f64) -> bool {
    if plan.maximize {
        a > b
    } else {
        a < b
    }
}

/// The best counted trial of `trials` and its objective.
fn best_of<'t>(plan: &Plan, trials: &'t [Trial]) -> Option<(&'t Trial, f64)> {
    trials
        .iter()
        .filter(|t| counts(t))
        .filter_map(|t| objective(t, plan).map(|v| (t, v)))
        .fold(None, |acc, (t, v)| match acc {
            Some((_, bv)) if !better(plan, v, bv) => acc,
            _ => Some((t, v)),
        })
}

/// A number in at most `digits` significant digits, without trailing zeros.
fn short(v: f64, digits: usize) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v == 0.0 {
        return "0".into();
    }
    let exp = v.abs().log10().floor() as i32;
    if !(-4..=6).contains(&exp) {
        return format!("{:.*e}", digits.saturating_sub(1), v);
    }
    let decimals = (digits as i32 - 1 - exp).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A parameter's value for display: numbers shortened, anything else as it is.
fn short_value(v: &str) -> String {
    match v.parse::<f64>() {
        Ok(x) if v.contains('.') || v.contains('e') => short(x, 4),
        _ => v.to_string(),
    }
}

/// The progress line printed when trial `name` has finished: its state, metrics (and why it
/// failed), parameters, how many trials have finished, and the best so far.
pub fn progress_line(plan: &Plan, trials: &[Trial], name: &str) -> String {
    let Some(t) = trials.iter().find(|t| t.name == name) else {
        return format!("[osprey] {name}: finished");
    };
    let finished = trials.iter().filter(|t| t.state != "Running").count();
    let metrics: Vec<String> = t
        .metrics
        .iter()
        .map(|m| format!("{}={}", m.name, short(m.value, 6)))
        .collect();
    let params: Vec<String> = t
        .parameter_assignments
        .iter()
        .map(|a| format!("{}={}", a.name, short_value(&a.value)))
        .collect();
    let best = match best_of(plan, trials) {
        Some((b, v)) if b.name == t.name => {
            format!("best {}={} (this one)", plan.metric, short(v, 6))
        }
        Some((b, v)) => format!("best {}={} ({})", plan.metric, short(v, 6), b.name),
        None => "no best yet".into(),
    };
    let mut line = format!(
        "[osprey] {name}: {:<10} {}",
        t.state,
        if metrics.is_empty() {
            "-".to_string()
        } else {
            metrics.join(" ")
        }
    );
    if let Some(m) = &t.message {
        let _ = write!(line, " ({m})");
    }
    let _ = write!(
        line,
        " | {} | {finished}/{} done, {best}",
        params.join(" "),
        plan.max_trials
    );
    line
}

/// One CSV field, quoted when it holds a comma, a quote, a line break or edge spaces (RFC 4180:
/// quotes inside doubled).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The parameter names, the space's first, then any others the trials carry.
fn parameter_names(plan: &Plan, trials: &[Trial]) -> Vec<String> {
    let mut names: Vec<String> = plan.space.iter().map(|p| p.name.clone()).collect();
    for t in trials {
        for a in &t.parameter_assignments {
            if !names.contains(&a.name) {
                names.push(a.name.clone());
            }
        }
    }
    names
}

/// The metric names: the objective, the additional metrics, then any others reported.
fn metric_names(plan: &Plan, trials: &[Trial]) -> Vec<String> {
    let mut names = vec![plan.metric.clone()];
    for n in &plan.additional {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    for t in trials {
        for m in &t.metrics {
            if !names.contains(&m.name) {
                names.push(m.name.clone());
            }
        }
    }
    names
}

/// The report as CSV: a header (name, state, each parameter, each metric, message), then one
/// row per trial in creation order; a missing value is an empty field.
pub fn csv(plan: &Plan, report: &Report) -> String {
    let params = parameter_names(plan, &report.trials);
    let metrics = metric_names(plan, &report.trials);
    let mut out = String::new();
    let header: Vec<String> = ["name", "state"]
        .iter()
        .map(|s| s.to_string())
        .chain(params.iter().cloned())
        .chain(metrics.iter().cloned())
        .chain(std::iter::once("message".to_string()))
        .map(|h| csv_field(&h))
        .collect();
    out.push_str(&header.join(","));
    out.push('\n');
    for t in &report.trials {
        let mut row = vec![csv_field(&t.name), csv_field(&t.state)];
        for p in &params {
            let v = t
                .parameter_assignments
                .iter()
                .find(|a| &a.name == p)
                .map(|a| a.value.as_str())
                .unwrap_or("");
            row.push(csv_field(v));
        }
        for m in &metrics {
            let v = t
                .metrics
                .iter()
                .find(|x| &x.name == m)
                .map(|x| x.value.to_string())
                .unwrap_or_default();
            row.push(csv_field(&v));
        }
        row.push(csv_field(t.message.as_deref().unwrap_or("")));
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// Text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Round tick values covering [lo, hi], about `n` of them.
fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() * step;
    let mut ticks = Vec::new();
    let mut k = 0.0;
    while first + k * step <= hi + step * 1e-9 {
        let v = first + k * step;
        // -0.0 and binary noise away.
        ticks.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        k += 1.0;
    }
    ticks
}

/// How an axis places values on [0, 1].
#[derive(Debug, Clone)]
enum Scale {
    /// `int`: ticks at whole numbers only.
    Linear {
        lo: f64,
        hi: f64,
        int: bool,
    },
    Log {
        lo: f64,
        hi: f64,
    },
    Categories(Vec<String>),
}

impl Scale {
    /// The position of a value, 0 at the bottom (or left), 1 at the top.
    fn pos(&self, v: &str) -> Option<f64> {
        match self {
            Scale::Linear { lo, hi, .. } => {
                let x: f64 = v.trim().parse().ok()?;
                Some(if hi > lo {
                    ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
                } else {
                    0.5
                })
            }
            Scale::Log { lo, hi } => {
                let x: f64 = v.trim().parse().ok()?;
                if x <= 0.0 {
                    return Some(0.0);
                }
                Some(if hi > lo {
                    ((x.ln() - lo.ln()) / (hi.ln() - lo.ln())).clamp(0.0, 1.0)
                } else {
                    0.5
                })
            }
            Scale::Categories(values) => {
                let i = values.iter().position(|c| c == v)?;
                Some(if values.len() > 1 {
                    i as f64 / (values.len() - 1) as f64
                } else {
                    0.5
                })
            }
        }
    }

    /// Tick positions and labels.
    fn ticks(&self) -> Vec<(f64, String)> {
        match self {
            Scale::Linear { lo, hi, int } => nice_ticks(*lo, *hi, 5)
                .into_iter()
                .filter(|t| !int || t.fract() == 0.0)
                .filter_map(|t| Some((self.pos(&t.to_string())?, short(t, 4))))
                .collect(),
            Scale::Log { lo, hi } => {
                // The powers of ten inside, with 2 and 5 times them when fewer than three.
                let decades: Vec<f64> = (lo.log10().ceil() as i32..=hi.log10().floor() as i32)
                    .map(|e| 10f64.powi(e))
                    .collect();
                let mut values: Vec<f64> = if decades.len() >= 3 {
                    decades
                } else {
                    let first = lo.log10().floor() as i32;
                    let last = hi.log10().ceil() as i32;
                    (first..=last)
                        .flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e)))
                        .filter(|v| *v >= lo * (1.0 - 1e-9) && *v <= hi * (1.0 + 1e-9))
                        .collect()
                };
                if values.is_empty() {
                    values = vec![*lo, *hi];
                }
                values
                    .into_iter()
                    .filter_map(|t| Some((self.pos(&t.to_string())?, short(t, 3))))
                    .collect()
            }
            Scale::Categories(values) => values
                .iter()
                .filter_map(|v| Some((self.pos(v)?, v.clone())))
                .collect(),
        }
    }
}

/// The scale of a parameter: its domain's bounds (log ones on a log axis), or its listed
/// values evenly spaced; for a parameter not in the space, the values the trials had.
fn parameter_scale(plan: &Plan, name: &str, trials: &[Trial]) -> Scale {
    match plan
        .space
        .iter()
        .find(|p| p.name == name)
        .map(|p| &p.domain)
    {
        Some(Domain::Int { min, max, dist, .. }) => {
            let (lo, hi) = (*min as f64, *max as f64);
            if matches!(dist, Distribution::LogUniform | Distribution::LogNormal) {
                Scale::Log { lo, hi }
            } else {
                Scale::Linear { lo, hi, int: true }
            }
        }
        Some(Domain::Double { min, max, dist, .. }) => {
            if matches!(dist, Distribution::LogUniform | Distribution::LogNormal) {
                Scale::Log { lo: *min, hi: *max }
            } else {
                Scale::Linear {
                    lo: *min,
                    hi: *max,
                    int: false,
                }
            }
        }
        Some(Domain::List(values)) => Scale::Categories(values.clone()),
        None => {
            let mut values: Vec<String> = Vec::new();
            for t in trials {
                for a in t.parameter_assignments.iter().filter(|a| a.name == name) {
                    if !values.contains(&a.value) {
                        values.push(a.value.clone());
                    }
                }
            }
            Scale::Categories(values)
        }
    }
}

/// The objective's axis: the values reported, padded a little.
fn objective_range(values: &[f64]) -> (f64, f64) {
    let lo = values.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        (hi - lo) * 0.05
    } else {
        lo.abs().max(1.0) * 0.05
    };
    (lo - pad, hi + pad)
}

fn state_colour(state: &str) -> &'static str {
    match state {
        "Succeeded" => "#2b7bba",
        "EarlyStopped" => "#8e6ac8",
        "Failed" => "#d7301f",
        "MetricsUnavailable" => "#f08c2e",
        "Killed" => "#8c8c8c",
        _ => "#bdbdbd",
    }
}

/// A colour from poor (light yellow) to good (dark blue) for `q` in [0, 1].
fn quality_colour(q: f64) -> String {
    const STOPS: [(f64, [f64; 3]); 4] = [
        (0.0, [237.0, 200.0, 60.0]),
        (0.4, [110.0, 190.0, 120.0]),
        (0.7, [40.0, 140.0, 170.0]),
        (1.0, [37.0, 52.0, 148.0]),
    ];
    let q = if q.is_finite() {
        q.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mut c = STOPS[0].1;
    for w in STOPS.windows(2) {
        let ((a, ca), (b, cb)) = (w[0], w[1]);
        if q >= a && q <= b {
            let f = (q - a) / (b - a);
            c = [0, 1, 2].map(|i| ca[i] + f * (cb[i] - ca[i]));
        }
    }
    format!(
        "rgb({},{},{})",
        c[0].round() as u8,
        c[1].round() as u8,
        c[2].round() as u8
    )
}

/// A trial's tooltip text: name, state, objective, parameters.
fn tooltip(plan: &Plan, t: &Trial) -> String {
    let mut s = format!("{} ({})", t.name, t.state);
    if let Some(v) = objective(t, plan) {
        let _ = write!(s, " {}={}", plan.metric, short(v, 6));
    }
    for a in &t.parameter_assignments {
        let _ = write!(s, "\n{}={}", a.name, a.value);
    }
    if let Some(m) = &t.message {
        let _ = write!(s, "\n{m}");
    }
    esc(&s)
}

const W: f64 = 920.0;
const H: f64 = 360.0;

/// The objective per trial: points by state (no objective: a cross at the bottom), and the
/// best so far as a step line.
fn objective_svg(plan: &Plan, trials: &[Trial]) -> String {
    let (left, right, top, bottom) = (70.0, 20.0, 34.0, 50.0);
    let (pw, ph) = (W - left - right, H - top - bottom);
    let values: Vec<f64> = trials.iter().filter_map(|t| objective(t, plan)).collect();
    let (lo, hi) = objective_range(&values);
    let n = trials.len().max(1) as f64;
    let x_of = |i: usize| left + pw * (i as f64 + 0.5) / n;
    let y_of = |v: f64| top + ph * (1.0 - (v - lo) / (hi - lo));
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg class="plot" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="objective per trial"><rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>"##
    );
    for t in nice_ticks(lo, hi, 6) {
        let y = y_of(t);
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e4e4e4"/><text x="{}" y="{:.1}" text-anchor="end" class="tick">{}</text>"##,
            left + pw,
            left - 6.0,
            y + 4.0,
            esc(&short(t, 4))
        );
    }
    let every = (trials.len() / 12).max(1);
    for i in (0..trials.len()).filter(|i| (i + 1) % every == 0 || *i == 0) {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle" class="tick">{}</text>"#,
            x_of(i),
            top + ph + 16.0,
            i + 1
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{}" text-anchor="middle" class="label">trial</text><text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle" class="label">{}</text>"#,
        left + pw / 2.0,
        H - 10.0,
        top + ph / 2.0,
        esc(&plan.metric)
    );
    // Best so far.
    let mut best: Option<f64> = None;
    let mut path = String::new();
    for (i, t) in trials.iter().enumerate() {
        if let (true, Some(v)) = (counts(t), objective(t, plan)) {
            if best.is_none_or(|b| better(plan, v, b)) {
                let x = x_of(i);
                match best {
                    None => {
                        let _ = write!(path, "M{x:.1},{:.1}", y_of(v));
                    }
                    Some(b) => {
                        let _ = write!(path, " L{x:.1},{:.1} L{x:.1},{:.1}", y_of(b), y_of(v));
                    }
                }
                best = Some(v);
            }
        }
    }
    if let Some(b) = best {
        let _ = write!(path, " L{:.1},{:.1}", left + pw, y_of(b));
        let _ = write!(
            s,
            r##"<path d="{path}" fill="none" stroke="#222" stroke-width="1.5"><title>best so far</title></path>"##
        );
    }
    for (i, t) in trials.iter().enumerate() {
        let colour = state_colour(&t.state);
        let x = x_of(i);
        match objective(t, plan) {
            Some(v) => {
                let _ = write!(
                    s,
                    r#"<circle cx="{x:.1}" cy="{:.1}" r="4" fill="{colour}" data-trial="{}"><title>{}</title></circle>"#,
                    y_of(v),
                    esc(&t.name),
                    tooltip(plan, t)
                );
            }
            None => {
                let y = top + ph - 6.0;
                let _ = write!(
                    s,
                    r#"<path d="M{:.1},{:.1} l8,8 m0,-8 l-8,8" stroke="{colour}" stroke-width="2" data-trial="{}"><title>{}</title></path>"#,
                    x - 4.0,
                    y - 4.0,
                    esc(&t.name),
                    tooltip(plan, t)
                );
            }
        }
    }
    // Legend: the states present.
    let mut states: Vec<&str> = Vec::new();
    for t in trials {
        if !states.contains(&t.state.as_str()) {
            states.push(&t.state);
        }
    }
    let mut x = left + 8.0;
    for st in states {
        let _ = write!(
            s,
            r#"<circle cx="{x:.1}" cy="{}" r="4" fill="{}"/><text x="{:.1}" y="{}" class="tick">{}</text>"#,
            12.0,
            state_colour(st),
            x + 8.0,
            16.0,
            esc(st)
        );
        x += 16.0 + 7.0 * st.len() as f64;
    }
    let _ = write!(
        s,
        r##"<line x1="{x:.1}" x2="{:.1}" y1="{}" y2="{}" stroke="#222" stroke-width="1.5"/><text x="{:.1}" y="{}" class="tick">best so far</text>"##,
        x + 18.0,
        12.0,
        12.0,
        x + 24.0,
        16.0
    );
    s.push_str("</svg>");
    s
}

/// Parallel coordinates: an axis per parameter and one for the objective; a line per trial,
/// coloured by its objective (failed ones red and dashed, the best thick).
fn parallel_svg(plan: &Plan, trials: &[Trial], best: Option<&str>) -> String {
    let names = parameter_names(plan, trials);
    let mut axes: Vec<(String, Scale)> = names
        .iter()
        .map(|n| (n.clone(), parameter_scale(plan, n, trials)))
        .collect();
    let values: Vec<f64> = trials.iter().filter_map(|t| objective(t, plan)).collect();
    let (lo, hi) = objective_range(&values);
    axes.push((plan.metric.clone(), Scale::Linear { lo, hi, int: false }));
    let (left, right, top, bottom) = (60.0, 60.0, 40.0, 30.0);
    let (pw, ph) = (W - left - right, H - top - bottom);
    let k = axes.len();
    let x_of = |i: usize| {
        if k > 1 {
            left + pw * i as f64 / (k - 1) as f64
        } else {
            left + pw / 2.0
        }
    };
    let y_of = |p: f64| top + ph * (1.0 - p);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="plot" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="parallel coordinates">"#
    );
    // Lines: the poorest first, the best last (on top).
    let quality = |v: f64| {
        let q = if hi > lo { (v - lo) / (hi - lo) } else { 1.0 };
        if plan.maximize {
            q
        } else {
            1.0 - q
        }
    };
    let mut order: Vec<&Trial> = trials.iter().collect();
    order.sort_by(|a, b| {
        let qa = objective(a, plan).map_or(-1.0, quality);
        let qb = objective(b, plan).map_or(-1.0, quality);
        let best_a = Some(a.name.as_str()) == best;
        let best_b = Some(b.name.as_str()) == best;
        (best_a, qa)
            .partial_cmp(&(best_b, qb))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    for t in order {
        let mut points: Vec<String> = Vec::new();
        for (i, (name, scale)) in axes.iter().enumerate() {
            let p = if i == k - 1 {
                objective(t, plan).and_then(|v| scale.pos(&v.to_string()))
            } else {
                t.parameter_assignments
                    .iter()
                    .find(|a| &a.name == name)
                    .and_then(|a| scale.pos(&a.value))
            };
            if let Some(p) = p {
                points.push(format!("{:.1},{:.1}", x_of(i), y_of(p)));
            }
        }
        let (colour, width, extra) = match objective(t, plan) {
            Some(v) if counts(t) => (
                quality_colour(quality(v)),
                if Some(t.name.as_str()) == best {
                    3.5
                } else {
                    1.5
                },
                "",
            ),
            Some(v) => (
                quality_colour(quality(v)),
                1.2,
                r#" stroke-dasharray="2 3""#,
            ),
            None => (
                state_colour(&t.state).to_string(),
                1.2,
                r#" stroke-dasharray="5 4" stroke-opacity="0.6""#,
            ),
        };
        let _ = write!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="{width}"{extra} data-trial="{}"><title>{}</title></polyline>"#,
            points.join(" "),
            esc(&t.name),
            tooltip(plan, t)
        );
    }
    for (i, (name, scale)) in axes.iter().enumerate() {
        let x = x_of(i);
        let kind = match scale {
            Scale::Log { .. } => " (log)",
            _ => "",
        };
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{top}" y2="{}" stroke="#333"/><text x="{x:.1}" y="{}" text-anchor="middle" class="label">{}{kind}</text>"##,
            top + ph,
            top - 14.0,
            esc(name)
        );
        for (p, label) in scale.ticks() {
            let y = y_of(p);
            let _ = write!(
                s,
                r##"<line x1="{:.1}" x2="{x:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#333"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="tick halo">{}</text>"##,
                x - 4.0,
                x - 6.0,
                y + 4.0,
                esc(&label)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// The report as one HTML page that needs nothing else: a summary, the two plots and a table
/// of every trial.
pub fn html(plan: &Plan, report: &Report) -> String {
    let trials = &report.trials;
    let best = report.current_optimal_trial.as_ref();
    let params = parameter_names(plan, trials);
    let metrics = metric_names(plan, trials);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{name}: osprey tune run</title>
<style>
body{{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;max-width:960px}}
h1{{font-size:20px}} h2{{font-size:16px;margin-top:28px}}
.tick{{font-size:11px;fill:#444}} .label{{font-size:12px;fill:#222;font-weight:600}}
.halo{{paint-order:stroke;stroke:#fff;stroke-width:3px}}
table{{border-collapse:collapse;font-size:12px}} td,th{{border:1px solid #ddd;padding:3px 6px;text-align:right}}
td:first-child,th:first-child,td.state{{text-align:left}} tr.best{{background:#e8f0fb;font-weight:600}}
svg.plot{{max-width:100%;height:auto}}
</style></head><body>
<h1>Experiment {name}</h1>
<p>{outcome} ({reason}): {n} trials; {direction} <b>{metric}</b>."#,
        name = esc(&report.experiment),
        outcome = if report.succeeded {
            "Succeeded"
        } else {
            "Failed"
        },
        reason = esc(&report.reason),
        n = trials.len(),
        direction = if plan.maximize {
            "maximize"
        } else {
            "minimize"
        },
        metric = esc(&plan.metric),
    );
    if let Some(b) = best {
        let assigned: Vec<String> = b
            .parameter_assignments
            .iter()
            .map(|a| format!("{}={}", esc(&a.name), esc(&a.value)))
            .collect();
        let _ = write!(
            s,
            " Best: <b>{}</b> {}={} with {}.",
            esc(&b.name),
            esc(&plan.metric),
            objective(b, plan).map_or("-".into(), |v| short(v, 6)),
            assigned.join(", ")
        );
    }
    s.push_str("</p>\n<h2>Objective per trial</h2>\n");
    s.push_str(&objective_svg(plan, trials));
    s.push_str("\n<h2>Parameters and objective</h2>\n");
    s.push_str(&parallel_svg(plan, trials, best.map(|b| b.name.as_str())));
    s.push_str("\n<h2>Trials</h2>\n<table><thead><tr><th>trial</th><th>state</th>");
    for h in params.iter().chain(metrics.iter()) {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("<th>message</th></tr></thead><tbody>\n");
    for t in trials {
        let is_best = best.is_some_and(|b| b.name == t.name);
        let _ = write!(
            s,
            r#"<tr{}><td>{}</td><td class="state" style="color:{}">{}</td>"#,
            if is_best { r#" class="best""# } else { "" },
            esc(&t.name),
            state_colour(&t.state),
            esc(&t.state)
        );
        for p in &params {
            let v = t
                .parameter_assignments
                .iter()
                .find(|a| &a.name == p)
                .map(|a| short_value(&a.value))
                .unwrap_or_default();
            let _ = write!(s, "<td>{}</td>", esc(&v));
        }
        for m in &metrics {
            let v = t
                .metrics
                .iter()
                .find(|x| &x.name == m)
                .map(|x| short(x.value, 6))
                .unwrap_or_default();
            let _ = write!(s, "<td>{}</td>", esc(&v));
        }
        let _ = writeln!(
            s,
            "<td>{}</td></tr>",
            esc(t.message.as_deref().unwrap_or(""))
        );
    }
    s.push_str("</tbody></table>\n</body></html>\n");
    s
}

/// Writes the CSV and the HTML page where asked, saying where.
pub fn write_files(
    plan: &Plan,
    report: &Report,
    csv_path: Option<&Path>,
    html_path: Option<&Path>,
) -> Result<(), TuneError> {
    let write = |path: &Path, text: String, what: &str| {
        std::fs::write(path, text)
            .map_err(|e| TuneError::Io(format!("{}: {e}", path.display())))?;
        println!("{what}: {}", path.display());
        Ok::<(), TuneError>(())
    };
    if let Some(p) = csv_path {
        write(p, csv(plan, report), "CSV")?;
    }
    if let Some(p) = html_path {
        write(p, html(plan, report), "Plot")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::experiment::Experiment;
    use super::super::local::{Assignment1, Metric};
    use super::*;

    fn plan() -> Plan {
        let yaml = r#"
apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {name: demo}
spec:
  objective: {type: maximize, objectiveMetricName: accuracy, additionalMetricNames: [loss]}
  algorithm: {algorithmName: random}
  parameters:
    - {name: lr, parameterType: double, feasibleSpace: {min: "0.001", max: "1", distribution: logUniform}}
    - {name: depth, parameterType: int, feasibleSpace: {min: "1", max: "8"}}
    - {name: opt, parameterType: categorical, feasibleSpace: {list: ["sgd", "adam,w", "say \"hi\""]}}
  trialTemplate:
    primaryContainerName: c
    trialSpec: {apiVersion: batch/v1, kind: Job, spec: {template: {spec: {containers: [{name: c, command: ["true"]}]}}}}
"#;
        let exp: Experiment = serde_yaml::from_str(yaml).expect("yaml");
        exp.plan().expect("plan")
    }

    fn trial(name: &str, state: &str, lr: &str, opt: &str, acc: Option<f64>) -> Trial {
        Trial {
            name: name.into(),
            parameter_assignments: vec![
                Assignment1 {
                    name: "lr".into(),
                    value: lr.into(),
                },
                Assignment1 {
                    name: "depth".into(),
                    value: "3".into(),
                },
                Assignment1 {
                    name: "opt".into(),
                    value: opt.into(),
                },
            ],
            state: state.into(),
            metrics: acc
                .map(|v| {
                    vec![
                        Metric {
                            name: "accuracy".into(),
                            value: v,
                        },
                        Metric {
                            name: "loss".into(),
                            value: 1.0 - v,
                        },
                    ]
                })
                .unwrap_or_default(),
            message: None,
        }
    }

    fn report() -> Report {
        let mut failed = trial("demo-0002", "Failed", "0.5", "adam,w", None);
        failed.message = Some("exit code 1, \"oops\"\nsecond line".into());
        let trials = vec![
            trial("demo-0001", "Succeeded", "0.01", "sgd", Some(0.8)),
            failed,
            trial(
                "<b>demo</b>&0003",
                "Succeeded",
                "0.1",
                "say \"hi\"",
                Some(0.9),
            ),
        ];
        Report {
            experiment: "demo".into(),
            succeeded: true,
            reason: "ExperimentMaxTrialsReached".into(),
            current_optimal_trial: Some(trials[2].clone()),
            trials,
        }
    }

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("0.25"), "0.25");
        assert_eq!(csv_field(""), "");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("cr\rhere"), "\"cr\rhere\"");
        assert_eq!(csv_field(" padded"), "\" padded\"");
    }

    #[test]
    fn csv_has_a_row_per_trial_with_every_parameter_and_metric() {
        let text = csv(&plan(), &report());
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("name,state,lr,depth,opt,accuracy,loss,message")
        );
        assert_eq!(
            lines.next(),
            Some("demo-0001,Succeeded,0.01,3,sgd,0.8,0.19999999999999996,")
        );
        // The failed trial: a quoted categorical, no metrics, a message with quotes and a
        // line break (so its record spans two lines).
        assert_eq!(
            lines.next(),
            Some("demo-0002,Failed,0.5,3,\"adam,w\",,,\"exit code 1, \"\"oops\"\"")
        );
        assert_eq!(lines.next(), Some("second line\""));
        assert_eq!(
            lines.next(),
            Some("<b>demo</b>&0003,Succeeded,0.1,3,\"say \"\"hi\"\"\",0.9,0.09999999999999998,")
        );
        assert_eq!(lines.next(), None);
    }

    #[test]
    fn html_shows_every_trial_escaped_and_fetches_nothing() {
        let page = html(&plan(), &report());
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.ends_with("</html>\n"));
        for name in ["demo-0001", "demo-0002", "&lt;b&gt;demo&lt;/b&gt;&amp;0003"] {
            // In the table, and as a point and a line in the plots.
            assert!(
                page.matches(&format!("<td>{name}</td>")).count() == 1,
                "{name} in the table"
            );
            assert_eq!(
                page.matches(&format!("data-trial=\"{name}\"")).count(),
                2,
                "{name} in both plots"
            );
        }
        assert!(!page.contains("<b>demo</b>"), "a trial name is escaped");
        assert!(page.contains("say &quot;hi&quot;"));
        // Nothing from elsewhere: no external scripts, styles, fonts or images.
        for bad in ["src=", "href=", "@import", "url(", "<script"] {
            assert!(!page.contains(bad), "{bad}");
        }
        // The log parameter has a log axis; the categorical's values are its ticks.
        assert!(page.contains("lr (log)"));
        assert!(page.contains(">adam,w</text>"));
        // The best trial is named in the summary and highlighted.
        assert!(page.contains("Best: <b>&lt;b&gt;demo&lt;/b&gt;&amp;0003</b> accuracy=0.9"));
        assert!(page.contains(r#"<tr class="best">"#));
    }

    #[test]
    fn log_and_category_axes_place_values() {
        let log = Scale::Log { lo: 0.001, hi: 1.0 };
        assert!((log.pos("0.001").unwrap()).abs() < 1e-12);
        assert!((log.pos("0.031622776601683794").unwrap() - 0.5).abs() < 1e-9);
        assert!((log.pos("1").unwrap() - 1.0).abs() < 1e-12);
        let labels: Vec<String> = log.ticks().into_iter().map(|(_, l)| l).collect();
        assert_eq!(labels, ["0.001", "0.01", "0.1", "1"]);
        let cats = Scale::Categories(vec!["a".into(), "b".into(), "c".into()]);
        assert_eq!(cats.pos("b"), Some(0.5));
        assert_eq!(cats.pos("z"), None);
        let ticks = nice_ticks(0.0, 1.0, 5);
        assert_eq!(ticks.len(), 6);
        for (t, want) in ticks.iter().zip([0.0, 0.2, 0.4, 0.6, 0.8, 1.0]) {
            assert!((t - want).abs() < 1e-9, "{ticks:?}");
        }
    }

    #[test]
    fn progress_line_says_state_metrics_and_best_so_far() {
        let p = plan();
        let r = report();
        let line = progress_line(&p, &r.trials[..2], "demo-0002");
        assert!(line.starts_with("[osprey] demo-0002: Failed"), "{line}");
        assert!(line.contains("opt=adam,w"), "{line}");
        assert!(
            line.contains("2/10 done, best accuracy=0.8 (demo-0001)"),
            "{line}"
        );
        let line = progress_line(&p, &r.trials, "<b>demo</b>&0003");
        assert!(line.contains("accuracy=0.9 loss=0.1"), "{line}");
        assert!(line.contains("best accuracy=0.9 (this one)"), "{line}");
        assert_eq!(short(0.123456789, 4), "0.1235");
        assert_eq!(short(12.0, 4), "12");
        assert_eq!(short(1.5e-7, 3), "1.50e-7");
    }
}
