//! W3C trace context carried along the write path: HTTP request → owner
//! command → commit → outbox row → bus message → consumer and stream fan-out,
//! so that one order is one trace, across instances.
//!
//! The application knows trace contexts only as W3C `traceparent` strings
//! (`00-<trace id>-<parent id>-<flags>`) and `tracing` spans; turning a span
//! into a context and back is the job of a [`Propagator`] that the
//! composition root installs once per process (the OpenTelemetry one lives in
//! `ordermon-telemetry`). Like `tracing`'s dispatcher and the `metrics`
//! recorder it is process-wide, so every service reaches it without being
//! handed it.
//!
//! With no propagator installed (tracing export off, the default) every
//! function here returns at once: no span is made, no context is carried, and
//! the write path costs what it cost before. A `traceparent` a client sent is
//! still readable ([`trace_id`]) so that error bodies and logs can name it.

use std::sync::OnceLock;

use tracing::Span;

/// The W3C header (and bus message header) that carries a trace context.
pub const TRACEPARENT: &str = "traceparent";

/// Turns spans into W3C trace contexts and back.
pub trait Propagator: Send + Sync + 'static {
    /// The `traceparent` naming `span` as the parent of what follows, or
    /// `None` when the span is not part of a trace.
    fn traceparent(&self, span: &Span) -> Option<String>;
    /// Makes `span` (not yet entered) a child of the remote context
    /// `traceparent`; a malformed one is ignored and `span` starts a trace
    /// of its own.
    fn set_parent(&self, span: &Span, traceparent: &str);
}

static PROPAGATOR: OnceLock<Box<dyn Propagator>> = OnceLock::new();

/// Installs the process's propagator; false when one was installed already
/// (the first stays).
pub fn install(propagator: Box<dyn Propagator>) -> bool {
    PROPAGATOR.set(propagator).is_ok()
}

/// True when a propagator is installed, i.e. traces are recorded.
#[must_use]
pub fn enabled() -> bool {
    PROPAGATOR.get().is_some()
}

/// The `traceparent` of the current span, when traces are recorded.
#[must_use]
pub fn current() -> Option<String> {
    PROPAGATOR.get()?.traceparent(&Span::current())
}

/// The `traceparent` of `span`, when traces are recorded.
#[must_use]
pub fn of(span: &Span) -> Option<String> {
    PROPAGATOR.get()?.traceparent(span)
}

/// Makes `span` a child of `traceparent` when traces are recorded and one is
/// given.
pub fn follow(span: &Span, traceparent: Option<&str>) {
    if let (Some(p), Some(tp)) = (PROPAGATOR.get(), traceparent) {
        p.set_parent(span, tp);
    }
}

/// The trace id (32 lowercase hex digits) of a well-formed W3C
/// `traceparent`, or `None`.
///
/// Well formed: version `00` with exactly four fields, or a later version
/// (not `ff`) with at least four; a trace id and a parent id of 32 and 16 hex
/// digits, not all zero; two hex digits of flags. Upper case is refused, as
/// the recommendation says.
#[must_use]
pub fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let rest = parts.next();
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let zero = |s: &str| s.bytes().all(|b| b == b'0');
    let version_ok = hex(version, 2)
        && version != "ff"
        && (version != "00" || rest.is_none())
        && (version == "00" || flags.len() == 2);
    (version_ok
        && hex(trace, 32)
        && !zero(trace)
        && hex(parent, 16)
        && !zero(parent)
        && hex(flags, 2))
    .then_some(trace)
}

#[cfg(test)]
mod tests {
    use super::trace_id;

    #[test]
    fn trace_ids_are_read_from_well_formed_traceparents_only() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(trace_id(good), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        // A later version may carry more fields.
        assert_eq!(
            trace_id("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra"),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            "",
            "00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(trace_id(bad), None, "{bad:?}");
        }
    }
}
