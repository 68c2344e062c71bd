//! The Prometheus text exposition format, version 0.0.4: one `# HELP` and
//! one `# TYPE` line per metric family, then its samples, label values
//! escaped (`\\`, `\"`, `\n`). Names follow Prometheus conventions: a
//! `sta_` prefix, base units (`_bytes`, `_seconds`), `_total` for
//! counters.

use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A text exposition being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Starts a family: its HELP and TYPE lines.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> &mut Self {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.name());
        self
    }

    /// One sample of the family just started (or of its `_bucket`,
    /// `_sum`, `_count` series).
    pub fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: impl Into<Value>,
    ) -> &mut Self {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_label(&mut self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = match value.into() {
            Value::Int(n) => writeln!(self.out, " {n}"),
            Value::Float(x) => writeln!(self.out, " {}", float(x)),
        };
        self
    }

    /// A family of one unlabelled sample.
    pub fn single(
        &mut self,
        name: &str,
        kind: Kind,
        help: &str,
        value: impl Into<Value>,
    ) -> &mut Self {
        self.family(name, kind, help).sample(name, &[], value)
    }

    /// A histogram family with one series per label set.
    pub fn histogram<'a>(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        series: impl IntoIterator<Item = (&'a str, &'a Histogram)>,
    ) -> &mut Self {
        self.family(name, Kind::Histogram, help);
        let bucket = format!("{name}_bucket");
        for (value, h) in series {
            let mut cumulative = 0;
            for (bound, count) in h.bounds.iter().zip(&h.counts) {
                cumulative += count;
                let le = float(*bound);
                self.sample(&bucket, &[(label, value), ("le", &le)], cumulative);
            }
            self.sample(&bucket, &[(label, value), ("le", "+Inf")], h.count);
            self.sample(&format!("{name}_sum"), &[(label, value)], h.sum);
            self.sample(&format!("{name}_count"), &[(label, value)], h.count);
        }
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}

pub enum Value {
    Int(u64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Int(n)
    }
}

impl From<u32> for Value {
    fn from(n: u32) -> Value {
        Value::Int(n.into())
    }
}

impl From<usize> for Value {
    fn from(n: usize) -> Value {
        Value::Int(n as u64)
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Value {
        Value::Float(x)
    }
}

fn float(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{x}")
    }
}

fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Observations counted into fixed buckets (upper bounds, ascending),
/// with their sum: plain state a core updates, rendered by [`Exposition`].
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative): `counts[i]` holds those
    /// in `(bounds[i-1], bounds[i]]`.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// Buckets for request handling times of microseconds to a second.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        if let Some(i) = self.bounds.iter().position(|b| value <= *b) {
            self.counts[i] += 1;
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_escapes() {
        let mut e = Exposition::new();
        e.single("sta_x_total", Kind::Counter, "Things.\nMore", 3u64);
        e.family("sta_y_bytes", Kind::Gauge, "Bytes.").sample(
            "sta_y_bytes",
            &[("name", "a\"b\\c\nd"), ("k", "v")],
            1.5,
        );
        assert_eq!(
            e.finish(),
            "# HELP sta_x_total Things.\\nMore\n# TYPE sta_x_total counter\nsta_x_total 3\n\
             # HELP sta_y_bytes Bytes.\n# TYPE sta_y_bytes gauge\n\
             sta_y_bytes{name=\"a\\\"b\\\\c\\nd\",k=\"v\"} 1.5\n"
        );
    }

    #[test]
    fn histograms_are_cumulative() {
        static B: &[f64] = &[0.1, 1.0];
        let mut h = Histogram::new(B);
        for v in [0.05, 0.1, 0.5, 3.0] {
            h.observe(v);
        }
        let mut e = Exposition::new();
        e.histogram("sta_d_seconds", "D.", "kind", [("a", &h)]);
        let text = e.finish();
        assert!(
            text.contains("sta_d_seconds_bucket{kind=\"a\",le=\"0.1\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("sta_d_seconds_bucket{kind=\"a\",le=\"1\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("sta_d_seconds_bucket{kind=\"a\",le=\"+Inf\"} 4\n"),
            "{text}"
        );
        assert!(
            text.contains("sta_d_seconds_sum{kind=\"a\"} 3.65\n"),
            "{text}"
        );
        assert!(
            text.contains("sta_d_seconds_count{kind=\"a\"} 4\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE sta_d_seconds histogram\n"));
    }
}
