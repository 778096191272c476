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

/// How a sample computed at scrape time is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Goes up and down.
    Gauge,
    /// Only goes up (its name ends in `_total`).
    Counter,
}

/// A value computed at scrape time (queue depth, Drift calls so far, process memory).
#[derive(Debug, Clone)]
pub struct Sample {
    /// Metric name.
    pub name: &'static str,
    /// Its help text.
    pub help: &'static str,
    /// Gauge or counter.
    pub kind: Kind,
    /// `k="v"` pairs from [`labels`].
    pub labels: String,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// A gauge sample.
    pub fn gauge(name: &'static str, help: &'static str, labels: String, value: f64) -> Self {
        Sample {
            name,
            help,
            kind: Kind::Gauge,
            labels,
            value,
        }
    }

    /// A counter sample.
    pub fn counter(name: &'static str, help: &'static str, labels: String, value: f64) -> Self {
        Sample {
            kind: Kind::Counter,
            ..Self::gauge(name, help, labels, value)
        }
    }
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

    /// The Prometheus text exposition of everything recorded, plus the `extra` samples
    /// (grouped by name: samples of one name must be adjacent).
    pub fn render(&self, extra: &[Sample]) -> String {
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
        for x in extra {
            if x.name != last {
                let kind = match x.kind {
                    Kind::Gauge => "gauge",
                    Kind::Counter => "counter",
                };
                let _ = writeln!(out, "# HELP {0} {1}\n# TYPE {0} {kind}", x.name, x.help);
                last = x.name;
            }
            let _ = writeln!(out, "{}{} {}", x.name, braces(&x.labels), x.value);
        }
        out
    }
}

/// The process's own metrics by the Prometheus conventions (`process_*`), read from `/proc`;
/// none where there is no `/proc`.
pub fn process_samples() -> Vec<Sample> {
    let mut out = Vec::new();
    let Ok(me) = procfs::process::Process::myself() else {
        return out;
    };
    if let Ok(stat) = me.stat() {
        let tps = procfs::ticks_per_second() as f64;
        out.push(Sample::counter(
            "process_cpu_seconds_total",
            "User and system CPU time spent, in seconds.",
            String::new(),
            (stat.utime + stat.stime) as f64 / tps,
        ));
        out.push(Sample::gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            String::new(),
            (stat.rss * procfs::page_size()) as f64,
        ));
        out.push(Sample::gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            String::new(),
            stat.vsize as f64,
        ));
        if let Ok(boot) = procfs::boot_time_secs() {
            out.push(Sample::gauge(
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch, in seconds.",
                String::new(),
                boot as f64 + stat.starttime as f64 / tps,
            ));
        }
    }
    if let Ok(n) = me.fd_count() {
        out.push(Sample::gauge(
            "process_open_fds",
            "Open file descriptors.",
            String::new(),
            n as f64,
        ));
    }
    if let Ok(limits) = me.limits()
        && let procfs::process::LimitValue::Value(n) = limits.max_open_files.soft_limit
    {
        out.push(Sample::gauge(
            "process_max_fds",
            "The limit on open file descriptors.",
            String::new(),
            n as f64,
        ));
    }
    out
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
        let text = m.render(&[
            Sample::gauge("g", "gauge", labels(&[("s", "queued")]), 4.0),
            Sample::counter("c_total", "count", String::new(), 2.0),
        ]);
        assert!(
            text.contains("# TYPE c_total counter\nc_total 2\n"),
            "{text}"
        );
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

    #[test]
    fn process_metrics_are_read_from_proc() {
        let s = process_samples();
        let get = |n: &str| s.iter().find(|x| x.name == n).map(|x| x.value);
        assert!(get("process_resident_memory_bytes").unwrap() > 1_000_000.0);
        assert!(get("process_open_fds").unwrap() >= 3.0);
        let start = get("process_start_time_seconds").unwrap();
        let now = drift_types::now_ms() as f64 / 1000.0;
        assert!(
            start <= now + 1.0 && start > now - 3600.0,
            "{start} vs {now}"
        );
    }
}
