//! A small metrics registry rendered in the Prometheus text format. Owned by the app (no
//! process-global recorder), so several instances can live in one test process.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

/// Histogram bucket bounds in seconds: 0.5 ms to 30 s.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

type Key = (&'static str, String);

/// Counters and histograms by name and label set.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<Key, u64>>,
    histograms: Mutex<BTreeMap<Key, Histogram>>,
    help: Mutex<BTreeMap<&'static str, (&'static str, &'static str)>>,
}

/// Formats `k="v"` pairs, escaping values.
pub fn labels(pairs: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let v = v
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        let _ = write!(s, "{k}=\"{v}\"");
    }
    s
}

impl Metrics {
    /// Adds `n` to a counter.
    pub fn inc(&self, name: &'static str, help: &'static str, labels: String, n: u64) {
        self.describe(name, "counter", help);
        *self.counters.lock().entry((name, labels)).or_default() += n;
    }

    /// Records one observation.
    pub fn observe(&self, name: &'static str, help: &'static str, labels: String, d: Duration) {
        self.describe(name, "histogram", help);
        let secs = d.as_secs_f64();
        let mut h = self.histograms.lock();
        let e = h.entry((name, labels)).or_insert_with(|| Histogram {
            counts: vec![0; BUCKETS.len()],
            ..Histogram::default()
        });
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                e.counts[i] += 1;
            }
        }
        e.sum += secs;
        e.count += 1;
    }

    /// A counter's value (for tests and summaries).
    pub fn counter(&self, name: &str, labels: &str) -> u64 {
        self.counters
            .lock()
            .iter()
            .find(|((n, l), _)| *n == name && l == labels)
            .map_or(0, |(_, v)| *v)
    }

    /// A counter summed over all its label sets.
    pub fn total(&self, name: &str) -> u64 {
        self.counters
            .lock()
            .iter()
            .filter(|((n, _), _)| *n == name)
            .map(|(_, v)| *v)
            .sum()
    }

    /// Quantile estimate from a histogram's buckets (upper bound of the bucket).
    pub fn quantile(&self, name: &str, q: f64) -> Option<f64> {
        let h = self.histograms.lock();
        let mut counts = vec![0u64; BUCKETS.len()];
        let mut total = 0;
        for ((n, _), v) in h.iter() {
            if *n == name {
                for (i, c) in v.counts.iter().enumerate() {
                    counts[i] += c;
                }
                total += v.count;
            }
        }
        if total == 0 {
            return None;
        }
        let want = (q * total as f64).ceil() as u64;
        BUCKETS
            .iter()
            .zip(counts)
            .find(|(_, c)| *c >= want)
            .map(|(b, _)| *b)
            .or(Some(f64::INFINITY))
    }

    fn describe(&self, name: &'static str, kind: &'static str, help: &'static str) {
        self.help.lock().entry(name).or_insert((kind, help));
    }

    /// The Prometheus text exposition of everything recorded, plus `extra` gauge lines.
    pub fn render(&self, extra: &[(&'static str, &'static str, String, f64)]) -> String {
        let mut out = String::new();
        let help = self.help.lock().clone();
        let mut last = "";
        for ((name, l), v) in self.counters.lock().iter() {
            if *name != last {
                let (_, h) = help.get(name).copied().unwrap_or(("counter", ""));
                let _ = writeln!(out, "# HELP {name} {h}\n# TYPE {name} counter");
                last = name;
            }
            let _ = writeln!(out, "{name}{} {v}", braces(l));
        }
        for ((name, l), h) in self.histograms.lock().iter() {
            if *name != last {
                let (_, hp) = help.get(name).copied().unwrap_or(("histogram", ""));
                let _ = writeln!(out, "# HELP {name} {hp}\n# TYPE {name} histogram");
                last = name;
            }
            let sep = if l.is_empty() { "" } else { "," };
            for (b, c) in BUCKETS.iter().zip(&h.counts) {
                let _ = writeln!(out, "{name}_bucket{{{l}{sep}le=\"{b}\"}} {c}");
            }
            let _ = writeln!(out, "{name}_bucket{{{l}{sep}le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "{name}_sum{} {}", braces(l), h.sum);
            let _ = writeln!(out, "{name}_count{} {}", braces(l), h.count);
        }
        for (name, h, l, v) in extra {
            if *name != last {
                let _ = writeln!(out, "# HELP {name} {h}\n# TYPE {name} gauge");
                last = name;
            }
            let _ = writeln!(out, "{name}{} {v}", braces(l));
        }
        out
    }
}

fn braces(l: &str) -> String {
    if l.is_empty() {
        String::new()
    } else {
        format!("{{{l}}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let m = Metrics::default();
        m.inc("a_total", "things", labels(&[("k", "v\"x")]), 2);
        m.inc("a_total", "things", labels(&[("k", "v\"x")]), 1);
        m.observe(
            "lat_seconds",
            "latency",
            String::new(),
            Duration::from_millis(3),
        );
        let text = m.render(&[("g", "gauge", labels(&[("s", "queued")]), 4.0)]);
        assert!(
            text.contains("# TYPE a_total counter\na_total{k=\"v\\\"x\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("lat_seconds_bucket{le=\"0.0025\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("lat_seconds_bucket{le=\"0.005\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("lat_seconds_count 1\n"), "{text}");
        assert!(text.contains("g{s=\"queued\"} 4\n"), "{text}");
        assert_eq!(m.quantile("lat_seconds", 0.5), Some(0.005));
        assert_eq!(m.counter("a_total", "k=\"v\\\"x\""), 3);
    }
}
