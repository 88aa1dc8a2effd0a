//! What is measured and how it is printed: per-thread CPU time and page faults (getrusage),
//! children's CPU time, peak RSS, and the table of results.

use std::fmt::Write as _;

/// CPU time and minor page faults at one instant.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// User + system CPU time, seconds.
    pub cpu: f64,
    /// Minor page faults.
    pub minflt: f64,
}

impl std::ops::Sub for Usage {
    type Output = Usage;
    fn sub(self, o: Usage) -> Usage {
        Usage {
            cpu: self.cpu - o.cpu,
            minflt: self.minflt - o.minflt,
        }
    }
}

fn rusage(who: libc::c_int) -> Usage {
    // SAFETY: `getrusage` writes a `rusage` into the zeroed struct we own; `who` is a valid
    // constant.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(who, &mut ru) != 0 {
            return Usage::default();
        }
        ru
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Usage {
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        minflt: ru.ru_minflt as f64,
    }
}

/// The calling thread's usage (the client thread: the server runs on another thread).
pub fn thread() -> Usage {
    rusage(libc::RUSAGE_THREAD)
}

/// The usage of every child waited for so far.
pub fn children() -> Usage {
    rusage(libc::RUSAGE_CHILDREN)
}

/// This process's peak resident set (VmHWM), KiB.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// One row of the final table: the SDK's value and the baseline's, one per round.
#[derive(Debug, Clone)]
pub struct Row {
    pub figure: String,
    pub metric: String,
    pub baseline: String,
    pub sdk: Vec<f64>,
    pub base: Vec<f64>,
}

/// The median (NaN for none).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// The `q` quantile (0 to 1), interpolated linearly between the two nearest ranks (the method
/// of numpy's default and R's type 7); NaN for none.
pub fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let Some(last) = s.len().checked_sub(1) else {
        return f64::NAN;
    };
    let pos = q.clamp(0.0, 1.0) * last as f64;
    let (lo, frac) = (pos.floor() as usize, pos.fract());
    let hi = (lo + 1).min(last);
    s[lo] + (s[hi] - s[lo]) * frac
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// A number with 4 significant digits, without an exponent for everyday sizes.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        return "-".to_owned();
    }
    let a = x.abs();
    if a == 0.0 {
        "0".to_owned()
    } else if a >= 1e6 {
        format!("{x:.3e}")
    } else if a >= 1000.0 {
        format!("{x:.0}")
    } else if a >= 100.0 {
        format!("{x:.1}")
    } else if a >= 10.0 {
        format!("{x:.2}")
    } else if a >= 0.01 {
        format!("{x:.3}")
    } else {
        format!("{x:.3e}")
    }
}

impl Row {
    pub fn new(figure: &str, metric: &str, baseline: &str) -> Self {
        Row {
            figure: figure.to_owned(),
            metric: metric.to_owned(),
            baseline: baseline.to_owned(),
            sdk: Vec::new(),
            base: Vec::new(),
        }
    }

    /// The table's cells: figure, metric, sdk, baseline, ratio, spread.
    fn cells(&self) -> [String; 6] {
        let (s, b) = (median(&self.sdk), median(&self.base));
        let ratio = s / b;
        let per_round: Vec<f64> = self
            .sdk
            .iter()
            .zip(&self.base)
            .map(|(s, b)| s / b)
            .collect();
        let spread = if self.sdk.len() > 1 {
            let (rlo, rhi) = min_max(&per_round);
            format!(
                "n={} ratio IQR {}–{} (min–max {}–{}); sdk IQR {}–{}, base IQR {}–{}",
                self.sdk.len(),
                num(quantile(&per_round, 0.25)),
                num(quantile(&per_round, 0.75)),
                num(rlo),
                num(rhi),
                num(quantile(&self.sdk, 0.25)),
                num(quantile(&self.sdk, 0.75)),
                num(quantile(&self.base, 0.25)),
                num(quantile(&self.base, 0.75)),
            )
        } else {
            "n=1".to_owned()
        };
        [
            self.figure.clone(),
            self.metric.clone(),
            num(s),
            format!("{} ({})", num(b), self.baseline),
            num(ratio),
            spread,
        ]
    }

    /// One line, printed as soon as a figure is done.
    pub fn line(&self) -> String {
        let c = self.cells();
        format!(
            "  {}: {}: sdk {} | baseline {} | sdk/baseline {} | {}",
            c[0], c[1], c[2], c[3], c[4], c[5]
        )
    }
}

/// The final table, aligned.
pub fn table(rows: &[Row]) -> String {
    let head = [
        "figure",
        "metric",
        "sdk (median)",
        "baseline (median)",
        "sdk/baseline",
        "spread over rounds (interquartile range)",
    ]
    .map(str::to_owned);
    let body: Vec<[String; 6]> = rows.iter().map(Row::cells).collect();
    let mut width = head.clone().map(|h| h.chars().count());
    for r in &body {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[String; 6]| {
        out.push('|');
        for (c, w) in cells.iter().zip(width) {
            let pad = w - c.chars().count();
            let _ = write!(out, " {c}{} |", " ".repeat(pad));
        }
        out.push('\n');
    };
    line(&mut out, &head);
    out.push('|');
    for w in width {
        let _ = write!(out, "{}|", "-".repeat(w + 2));
    }
    out.push('\n');
    for r in &body {
        line(&mut out, r);
    }
    out
}
