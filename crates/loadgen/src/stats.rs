//! Latency histograms (`HdrHistogram`, µs) that cross process boundaries as base64, and the
//! server-side readings taken from `/proc` (RSS, CPU time).

use anyhow::{Context, Result, anyhow};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use serde::Serialize;

/// A latency histogram in µs, 1 µs to 10 min, 3 significant digits.
#[expect(
    clippy::expect_used,
    reason = "constant bounds that Histogram accepts: low 1, high over twice low, 3 digits"
)]
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("static histogram bounds are valid")
}

/// Records `us` (clamped into the histogram's range).
pub fn record(h: &mut Histogram<u64>, us: u64) {
    h.saturating_record(us.max(1));
}

/// The histogram as base64 of its V2 serialization.
pub fn encode(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = V2Serializer::new().serialize(h, &mut bytes);
    STANDARD.encode(bytes)
}

/// Decodes [`encode`]'s output. Errors: malformed base64 or histogram bytes.
pub fn decode(s: &str) -> Result<Histogram<u64>> {
    let bytes = STANDARD.decode(s).context("histogram base64")?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| anyhow!("histogram: {e:?}"))
}

/// Latency figures in ms.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
}

impl Latency {
    /// Reads a µs histogram.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// A process's resident set and CPU time, from `/proc/<pid>/status` and `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    /// `VmRSS` in KiB.
    pub rss_kib: u64,
    /// utime + stime in clock ticks (1/100 s on Linux).
    pub cpu_ticks: u64,
}

/// Reads `pid`'s RSS and CPU time. Errors: no such process (or not Linux).
pub fn sample(pid: u32) -> Result<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS in /proc/{pid}/status"))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("malformed /proc/{pid}/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> u64 { fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0) };
    Ok(ProcSample {
        rss_kib,
        cpu_ticks: tick(11) + tick(12),
    })
}

/// The pid of the process listening on TCP `port` (IPv4 or IPv6), found through
/// `/proc/net/tcp*` and the socket links in `/proc/*/fd`. `None` when it is not visible (another
/// user's process, another machine).
pub fn pid_listening_on(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let local_port = f[1]
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) {
                inodes.push(format!("socket:[{}]", f[9]));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path())
                && inodes.iter().any(|i| link.as_os_str() == i.as_str())
            {
                return Some(pid);
            }
        }
    }
    None
}

/// The machine's speed probe: how many steps of a fixed chain of dependent integer operations
/// (multiply, shift, xor) one core runs per µs, the best of three bursts of 2²² steps (a few ms
/// each). The chain does no memory access and no system call, so the figure follows only the
/// core's clock and what the host takes from it (steal): run before and after a load on an
/// otherwise idle machine, it tells a slow phase of a shared machine from a fast one, which a
/// load's own figures cannot. Units: steps per µs (about 630 on this project's 2-vCPU AMD EPYC
/// machine when idle).
pub fn speed_probe() -> f64 {
    const STEPS: u64 = 1 << 22;
    let mut best = f64::INFINITY;
    for burst in 0..3u64 {
        let t0 = std::time::Instant::now();
        let mut x = std::hint::black_box(0x9E37_79B9_7F4A_7C15u64 ^ burst);
        for _ in 0..STEPS {
            x = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
            x ^= x >> 29;
        }
        std::hint::black_box(x);
        best = best.min(t0.elapsed().as_secs_f64());
    }
    (STEPS as f64 / best / 1e6).round()
}

/// The machine's CPU time stolen by its host so far, in clock ticks (1/100 s), from the `steal`
/// field of `/proc/stat`'s `cpu` line (all CPUs together); 0 where it is not available.
pub fn steal_ticks() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|stat| {
            let line = stat.lines().find(|l| l.starts_with("cpu "))?;
            line.split_whitespace().nth(8)?.parse().ok()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_survive_the_trip_between_processes() {
        let mut h = histogram();
        for us in [100, 200, 300, 50_000] {
            record(&mut h, us);
        }
        let back = decode(&encode(&h)).unwrap();
        assert_eq!(back.len(), 4);
        let l = Latency::of(&back);
        assert!((l.max_ms - 50.0).abs() < 0.1, "{l:?}");
        assert!((l.p50_ms - 0.2).abs() < 0.01, "{l:?}");
    }

    #[test]
    fn reads_its_own_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_kib > 0);
    }
}
