//! Results and their outputs: the table, JSON, HdrHistogram percentile-distribution files
//! and an SVG plot of latency by percentile with several runs overlaid.

use hdrhistogram::Histogram;
use std::fmt::Write as _;

/// Percentiles every output reports.
pub const PERCENTILES: &[(f64, &str)] = &[
    (50.0, "p50"),
    (90.0, "p90"),
    (99.0, "p99"),
    (99.9, "p99.9"),
    (99.99, "p99.99"),
    (99.999, "p99.999"),
];

pub struct RunResult {
    pub label: String,
    pub target: String,
    pub mode: String,
    pub requests: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub redirects: u64,
    pub unfinished: u64,
    pub elapsed_s: f64,
    pub hist: Histogram<u64>,
    /// Server CPU (user + system) per request, from INFO cpu before and after.
    pub cpu_us_per_req: Option<f64>,
}

impl RunResult {
    pub fn rps(&self) -> f64 {
        if self.elapsed_s > 0.0 {
            self.requests as f64 / self.elapsed_s
        } else {
            0.0
        }
    }
    pub fn pct_us(&self, p: f64) -> f64 {
        self.hist.value_at_quantile(p / 100.0) as f64 / 1000.0
    }
    pub fn max_us(&self) -> f64 {
        self.hist.max() as f64 / 1000.0
    }
    pub fn mean_us(&self) -> f64 {
        self.hist.mean() / 1000.0
    }
}

pub fn table_header() -> String {
    let mut s = format!(
        "{:<16} {:>10} {:>11} {:>9}",
        "run", "requests", "req/s", "mean_us"
    );
    for (_, name) in PERCENTILES {
        let _ = write!(s, " {:>9}", name);
    }
    let _ = write!(s, " {:>9} {:>10} {:>7}", "max", "cpu_us/req", "errors");
    s
}

pub fn table_row(r: &RunResult) -> String {
    let mut s = format!(
        "{:<16} {:>10} {:>11.0} {:>9.1}",
        r.label,
        r.requests,
        r.rps(),
        r.mean_us()
    );
    for (p, _) in PERCENTILES {
        let _ = write!(s, " {:>9.1}", r.pct_us(*p));
    }
    let cpu = r
        .cpu_us_per_req
        .map_or("-".to_string(), |c| format!("{:.3}", c));
    let _ = write!(s, " {:>9.1} {:>10} {:>7}", r.max_us(), cpu, r.errors);
    s
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_num(v: f64) -> String {
    if v.is_finite() {
        format!("{:.3}", v)
    } else {
        "null".into()
    }
}

pub fn json(r: &RunResult) -> String {
    let mut lat = format!(
        "\"mean\":{},\"min\":{}",
        json_num(r.mean_us()),
        json_num(r.hist.min() as f64 / 1000.0)
    );
    for (p, name) in PERCENTILES {
        let _ = write!(lat, ",{}:{}", json_str(name), json_num(r.pct_us(*p)));
    }
    let _ = write!(lat, ",\"max\":{}", json_num(r.max_us()));
    format!(
        "{{\"label\":{},\"target\":{},\"mode\":{},\"requests\":{},\"errors\":{},\
         \"first_error\":{},\"redirects\":{},\"unfinished\":{},\"elapsed_s\":{},\
         \"throughput_rps\":{},\"latency_us\":{{{}}},\"server_cpu_us_per_request\":{}}}",
        json_str(&r.label),
        json_str(&r.target),
        json_str(&r.mode),
        r.requests,
        r.errors,
        r.first_error.as_deref().map_or("null".into(), json_str),
        r.redirects,
        r.unfinished,
        json_num(r.elapsed_s),
        json_num(r.rps()),
        lat,
        r.cpu_us_per_req.map_or("null".into(), json_num)
    )
}

/// HdrHistogram's percentile distribution text (values in milliseconds), as
/// `outputPercentileDistribution` writes it, readable by HdrHistogram's plotters.
pub fn percentile_distribution(h: &Histogram<u64>) -> String {
    let scale = 1_000_000.0; // ns -> ms
    let mut s = String::from("       Value     Percentile TotalCount 1/(1-Percentile)\n\n");
    for v in h.iter_quantiles(5) {
        let q = v.quantile_iterated_to();
        let value = h.highest_equivalent(v.value_iterated_to()) as f64 / scale;
        if q >= 1.0 {
            let _ = writeln!(
                s,
                "{:12.3} {:2.12} {:10}",
                value,
                q,
                v.count_since_last_iteration()
            );
            continue;
        }
        let _ = writeln!(
            s,
            "{:12.3} {:2.12} {:10} {:14.2}",
            value,
            q,
            h.count_between(0, v.value_iterated_to()),
            1.0 / (1.0 - q)
        );
    }
    let _ = writeln!(
        s,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        h.mean() / scale,
        h.stdev() / scale
    );
    let _ = writeln!(
        s,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        h.max() as f64 / scale,
        h.len()
    );
    let _ = writeln!(
        s,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        h.distinct_values()
    );
    s
}

/// A series for the plot: (percentile in [0, 100), latency in µs).
pub type Series = (String, Vec<(f64, f64)>);

pub fn series(label: &str, h: &Histogram<u64>) -> Series {
    let mut pts = Vec::new();
    for v in h.iter_quantiles(5) {
        let q = v.quantile_iterated_to();
        if q >= 1.0 {
            break;
        }
        pts.push((
            q * 100.0,
            h.highest_equivalent(v.value_iterated_to()) as f64 / 1000.0,
        ));
    }
    (label.to_string(), pts)
}

/// Reads a percentile-distribution file back into a series.
pub fn series_from_file(path: &str) -> Result<Series, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {}", path, e))?;
    let mut pts = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 4 || line.starts_with('#') {
            continue;
        }
        let (Ok(v), Ok(q)) = (cols[0].parse::<f64>(), cols[1].parse::<f64>()) else {
            continue;
        };
        if q < 1.0 {
            pts.push((q * 100.0, v * 1000.0));
        }
    }
    if pts.is_empty() {
        return Err(format!("{}: no percentile lines", path));
    }
    let label = std::path::Path::new(path)
        .file_stem()
        .map_or(path.to_string(), |s| s.to_string_lossy().into_owned());
    Ok((label, pts))
}

const COLORS: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// Latency by percentile: x is log10(1/(1-p)) (so 90, 99, 99.9... are evenly spaced up to
/// 99.999), y is latency in µs on a log scale.
pub fn svg(title: &str, all: &[Series]) -> String {
    let (w, h, ml, mr, mt, mb) = (900.0, 520.0, 70.0, 180.0, 40.0, 50.0);
    let (pw, ph) = (w - ml - mr, h - mt - mb);
    let x_max = 5.0;
    let vals = all.iter().flat_map(|s| s.1.iter().map(|p| p.1));
    let (mut lo, mut hi) = (f64::MAX, 1e-3f64);
    for v in vals {
        lo = lo.min(v.max(1e-3));
        hi = hi.max(v);
    }
    if lo > hi {
        lo = 1.0;
        hi = 10.0;
    }
    let (ylo, yhi) = (
        lo.log10().floor(),
        (hi.log10().ceil()).max(lo.log10().floor() + 1.0),
    );
    let xp = |pct: f64| -> f64 {
        let x = (1.0 / (1.0 - (pct / 100.0).min(0.999_999)))
            .log10()
            .min(x_max);
        ml + x / x_max * pw
    };
    let yp = |v: f64| -> f64 { mt + ph - (v.max(1e-3).log10() - ylo) / (yhi - ylo) * ph };
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" \
         fill=\"white\"/>\n<text x=\"{}\" y=\"22\" font-size=\"15\">{}</text>\n",
        ml,
        xml(title)
    );
    for (i, name) in ["0", "90", "99", "99.9", "99.99", "99.999"]
        .iter()
        .enumerate()
    {
        let x = ml + i as f64 / x_max * pw;
        let _ = writeln!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{mt}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{name}%</text>",
            mt + ph,
            mt + ph + 18.0
        );
    }
    let mut e = ylo;
    while e <= yhi {
        let y = yp(10f64.powf(e));
        let _ = writeln!(
            s,
            "<line x1=\"{ml}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            ml + pw,
            ml - 6.0,
            y + 4.0,
            fmt_us(10f64.powf(e))
        );
        e += 1.0;
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">percentile</text>\
         <text x=\"16\" y=\"{:.1}\" transform=\"rotate(-90 16 {:.1})\" \
         text-anchor=\"middle\">latency</text>",
        ml + pw / 2.0,
        h - 10.0,
        mt + ph / 2.0,
        mt + ph / 2.0
    );
    for (i, (label, pts)) in all.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = pts
            .iter()
            .map(|(p, v)| format!("{:.1},{:.1}", xp(*p), yp(*v)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\
             <rect x=\"{:.1}\" y=\"{:.1}\" width=\"12\" height=\"3\" fill=\"{color}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            path.join(" "),
            ml + pw + 12.0,
            mt + 10.0 + i as f64 * 18.0,
            ml + pw + 30.0,
            mt + 15.0 + i as f64 * 18.0,
            xml(label)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn fmt_us(v: f64) -> String {
    if v >= 1e6 {
        format!("{}s", v / 1e6)
    } else if v >= 1e3 {
        format!("{}ms", v / 1e3)
    } else {
        format!("{}µs", v)
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_file_round_trips_through_the_plot_reader() {
        let mut h = crate::run::new_histogram();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap();
        }
        let text = percentile_distribution(&h);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.hdr");
        std::fs::write(&path, &text).unwrap();
        let (label, pts) = series_from_file(path.to_str().unwrap()).unwrap();
        assert_eq!(label, "run");
        let p50 = pts.iter().find(|p| p.0 >= 50.0).unwrap();
        assert!((p50.1 - 500.0).abs() < 5.0, "{:?}", p50);
        let plot = svg("t", &[(label, pts)]);
        assert!(plot.starts_with("<svg") && plot.contains("polyline"));
    }
}
