//! Traces through an owner: a command sent from within a trace runs in an
//! `owner.command` span that is a child of its sender's, and the cycle's
//! commit gets one `commit` span per such command, whose context the
//! command's outbox rows carry to the relay (see [`crate::trace_context`]).
//!
//! Nothing here runs when traces are not recorded: commands then arrive
//! untraced, and the spans returned are disabled ones.

use std::ops::Range;

use ordermon_domain::ids::UserId;
use ordermon_domain::ports::OutboxMessage;
use tracing::Span;

use super::Command;
use crate::trace_context;

/// The command to handle and, for a traced one, the span to handle it in.
pub(super) fn command_span(cmd: Command, user: &UserId) -> (Command, Option<Span>) {
    match cmd {
        Command::Traced(traced) => {
            let (cmd, traceparent) = *traced;
            let span = tracing::info_span!(
                "owner.command",
                otel.kind = "internal",
                user_id = %user,
                command = cmd.name(),
            );
            trace_context::follow(&span, Some(&traceparent));
            (cmd, Some(span))
        }
        cmd => (cmd, None),
    }
}

/// Opens a `commit` span under each traced command of the cycle and sets it
/// as the trace context of the outbox rows of that command's events (`outbox`
/// holds one row per event of the cycle, in order). The spans end when the
/// returned vector is dropped, after the commit.
pub(super) fn commit_spans(
    traced: &[(Span, Range<usize>)],
    outbox: &mut [OutboxMessage],
) -> Vec<Span> {
    traced
        .iter()
        .map(|(command, events)| {
            let span = tracing::info_span!(parent: command, "commit", otel.kind = "internal", events = events.len());
            if let Some(traceparent) = trace_context::of(&span) {
                for message in outbox.get_mut(events.clone()).into_iter().flatten() {
                    message.traceparent = Some(traceparent.clone());
                }
            }
            span
        })
        .collect()
}

impl Command {
    /// A short name for spans.
    fn name(&self) -> &'static str {
        match self {
            Self::Submit { .. } => "submit",
            Self::SubmitBatch { .. } => "submit_batch",
            Self::Modify { .. } => "modify",
            Self::Cancel { .. } => "cancel",
            Self::CancelAll { .. } => "cancel_all",
            Self::Report { .. } => "report",
            Self::AdjustCash { .. } => "adjust_cash",
            Self::UpdateUser { .. } => "update_user",
            Self::Snapshot { .. } => "snapshot",
            Self::StrategyDecided(_) => "strategy_decided",
            Self::StrategyFailed(_) => "strategy_failed",
            Self::Tick => "tick",
            Self::StartMonitor { .. } => "start_monitor",
            Self::StopMonitor { .. } => "stop_monitor",
            Self::SyncStrategies { .. } => "sync_strategies",
            Self::CreateStrategy { .. } => "create_strategy",
            Self::UpdateStrategy { .. } => "update_strategy",
            Self::DeleteStrategy { .. } => "delete_strategy",
            Self::ListStrategies { .. } => "list_strategies",
            Self::Traced(_) => "traced",
        }
    }
}
