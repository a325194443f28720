//! The quote lanes' scheduling priority.
//!
//! A lane is the latency-critical path: a quote waits in it until every
//! strategy before it has been called. Everything else in the process (the
//! owners' commits, the HTTP handlers, the ticker, the scan) can wait a few
//! milliseconds. When the cores are shared, the operating system gives each
//! runnable thread its share by nice value; a lane at a lower nice value than
//! the runtime's workers keeps its core through a scan or a burst of commits
//! instead of sharing it evenly. On Linux a nice value belongs to a thread, so
//! each lane sets its own (`monitor.lane_nice`). Going below the process's
//! value needs `CAP_SYS_NICE` or a high enough nice limit (`RLIMIT_NICE`,
//! systemd's `LimitNICE=`); without either the lanes keep the process's
//! priority, which is what they had before this setting.

/// Gives the calling thread the nice value `nice`.
///
/// # Errors
/// The system refused (no privilege to go below the current value), or this
/// platform does not set a thread's priority (only Linux does).
fn set_current_thread_nice(nice: i32) -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), nice)
            .map_err(|e| e.to_string())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = nice;
        Err("a thread's priority is set on Linux only".to_owned())
    }
}

/// The calling thread's nice value, where the platform tells it.
#[cfg(all(test, target_os = "linux"))]
fn current_thread_nice() -> Option<i32> {
    rustix::process::getpriority_process(Some(rustix::thread::gettid())).ok()
}

/// Called by lane `lane`'s thread as it starts: takes `nice` when it is not
/// 0, and says what came of it (once, by lane 0, at info when refused).
pub(crate) fn take_lane_nice(lane: usize, nice: i32) {
    if nice == 0 {
        return;
    }
    match set_current_thread_nice(nice) {
        Ok(()) => tracing::debug!(lane, nice, "quote lane runs at its own priority"),
        Err(e) if lane == 0 => tracing::info!(
            nice,
            error = %e,
            "quote lanes run at the process's priority: a lower nice value needs CAP_SYS_NICE or a nice limit (RLIMIT_NICE, systemd LimitNICE=); set monitor.lane_nice = 0 to not ask"
        ),
        Err(e) => {
            tracing::debug!(lane, nice, error = %e, "quote lane runs at the process's priority")
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_thread_takes_a_higher_nice_value_and_the_others_keep_theirs() {
        let before = current_thread_nice().unwrap();
        let lowered = std::thread::spawn(|| {
            // Raising a nice value (less priority) needs no privilege.
            set_current_thread_nice(7).unwrap();
            current_thread_nice()
        })
        .join()
        .unwrap();
        assert_eq!(lowered, Some(7));
        assert_eq!(current_thread_nice(), Some(before), "only that thread");
    }
}
