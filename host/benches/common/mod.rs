//! What the benches share: summaries of samples and the machine's load.
#![allow(dead_code)]

/// Median, min, max.
#[derive(Clone, Copy)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

pub fn stats(values: impl IntoIterator<Item = f64>) -> Stats {
    let mut v: Vec<f64> = values.into_iter().collect();
    v.sort_by(f64::total_cmp);
    Stats { median: v[v.len() / 2], min: v[0], max: v[v.len() - 1] }
}

/// `median [min – max]` with `decimals` digits.
pub fn range(s: Stats, decimals: usize) -> String {
    format!("{:.*} [{:.*} – {:.*}]", decimals, s.median, decimals, s.min, decimals, s.max)
}

/// `/proc/loadavg`'s 1, 5 and 15 minute averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}
