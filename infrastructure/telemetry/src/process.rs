//! The process's own figures in the standard Prometheus names
//! (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds`,
//! `process_threads`), read from `/proc/self` at each scrape and appended to
//! the exposition. Elsewhere than on Linux nothing is appended.

use std::fmt::Write as _;

/// Clock ticks per second of the CPU times in `/proc/self/stat`: the kernel's
/// `USER_HZ`, fixed at 100 for user space on every architecture Linux runs
/// ordermon on.
const USER_HZ: f64 = 100.0;

/// What `/proc/self` says now.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Sample {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<f64>,
    virtual_bytes: Option<f64>,
    threads: Option<f64>,
    open_fds: Option<f64>,
    max_fds: Option<f64>,
}

/// The user and system CPU seconds in the text of `/proc/self/stat`.
fn cpu_seconds(stat: &str) -> Option<f64> {
    // The command name (field 2) is in parentheses and may hold spaces:
    // count fields from after its closing one.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After `)`: state is field 3, utime field 14, stime field 15.
    let utime: f64 = fields.nth(11)?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// A `Name:  value kB` line of `/proc/self/status`, in bytes (or as a count
/// when it has no unit).
fn status_value(status: &str, key: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    let mut parts = line[key.len()..].trim_start_matches(':').split_whitespace();
    let value: f64 = parts.next()?.parse().ok()?;
    Some(match parts.next() {
        Some("kB") => value * 1024.0,
        _ => value,
    })
}

/// The soft limit on open files in the text of `/proc/self/limits`.
fn max_fds(limits: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(target_os = "linux")]
fn sample() -> Sample {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let status = read("/proc/self/status").unwrap_or_default();
    #[allow(clippy::cast_precision_loss)]
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as f64);
    Sample {
        cpu_seconds: read("/proc/self/stat").as_deref().and_then(cpu_seconds),
        resident_bytes: status_value(&status, "VmRSS"),
        virtual_bytes: status_value(&status, "VmSize"),
        threads: status_value(&status, "Threads"),
        open_fds,
        max_fds: read("/proc/self/limits").as_deref().and_then(max_fds),
    }
}

#[cfg(not(target_os = "linux"))]
fn sample() -> Sample {
    Sample::default()
}

fn write(out: &mut String, s: &Sample) {
    let series = [
        (
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent, in seconds.",
            s.cpu_seconds,
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size, in bytes.",
            s.resident_bytes,
        ),
        (
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size, in bytes.",
            s.virtual_bytes,
        ),
        (
            "process_open_fds",
            "gauge",
            "Open file descriptors.",
            s.open_fds,
        ),
        (
            "process_max_fds",
            "gauge",
            "The limit on open file descriptors.",
            s.max_fds,
        ),
        (
            "process_threads",
            "gauge",
            "Operating system threads of the process.",
            s.threads,
        ),
    ];
    for (name, kind, help, value) in series {
        if let Some(v) = value {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n\n"
            );
        }
    }
}

/// Appends the process's figures to `out`, a text exposition.
pub(crate) fn render(out: &mut String) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    write(out, &sample());
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::float_cmp)]

    use super::*;

    #[test]
    fn proc_texts_are_read() {
        let stat = "4242 (monitor server) S 1 4242 4242 0 -1 4194560 2500 0 0 0 150 50 0 0 20 0 9 0 12345 1000 200 18446744073709551615";
        assert_eq!(cpu_seconds(stat), Some(2.0));
        assert_eq!(cpu_seconds("garbage"), None);
        let status = "Name:\tmonitor-server\nVmSize:\t  1000 kB\nVmRSS:\t   512 kB\nThreads:\t9\n";
        assert_eq!(status_value(status, "VmRSS"), Some(512.0 * 1024.0));
        assert_eq!(status_value(status, "VmSize"), Some(1000.0 * 1024.0));
        assert_eq!(status_value(status, "Threads"), Some(9.0));
        assert_eq!(status_value(status, "VmSwap"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        assert_eq!(max_fds(limits), Some(1024.0));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_measured_and_rendered_with_help() {
        let s = sample();
        assert!(s.cpu_seconds.is_some_and(|c| c >= 0.0));
        assert!(s.resident_bytes.is_some_and(|b| b > 0.0));
        assert!(s.threads.is_some_and(|t| t >= 1.0));
        assert!(s.open_fds.is_some_and(|n| n >= 1.0));
        let mut out = String::from("# TYPE x gauge\nx 1");
        render(&mut out);
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
        ] {
            assert!(out.contains(&format!("# HELP {name} ")), "{out}");
            assert!(out.contains(&format!("\n{name} ")), "{out}");
        }
        assert!(out.starts_with("# TYPE x gauge\nx 1\n"), "{out}");
    }
}
