//! The tracing layer that routes events to the per-user and system log files.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use chrono::{DateTime, Utc};
use ordermon_domain::ids::UserId;
use ordermon_domain::ports::UserLogSink;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::FileLogSink;

/// The user id a span carries, stored in its extensions.
struct SpanUser(String);

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
    user_id: Option<String>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "user_id" => self.user_id = Some(format!("{value:?}").trim_matches('"').to_owned()),
            name => {
                let _ = write!(self.rest, " {name}={value:?}");
            }
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "user_id" => self.user_id = Some(value.to_owned()),
            name => {
                let _ = write!(self.rest, " {name}={value}");
            }
        }
    }
}

struct Line {
    at: DateTime<Utc>,
    user: Option<UserId>,
    text: String,
}

/// Owns the background writer; dropping it stops the thread after it drains.
#[derive(Debug)]
pub struct UserLogWriter {
    thread: Option<std::thread::JoinHandle<()>>,
}

impl UserLogWriter {
    /// Waits for the writer to drain (after every layer handle is gone).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A layer writing per-user and system log lines through a background thread.
#[derive(Debug, Clone)]
pub struct UserLogLayer {
    tx: SyncSender<Line>,
}

impl UserLogLayer {
    /// Starts the writer thread over `sink`; `capacity` lines may wait.
    ///
    /// # Errors
    /// When the thread cannot be spawned.
    pub fn start(
        sink: Arc<FileLogSink>,
        capacity: usize,
    ) -> std::io::Result<(Self, UserLogWriter)> {
        let (tx, rx) = sync_channel::<Line>(capacity.max(16));
        let thread = std::thread::Builder::new()
            .name("ordermon-user-logs".to_owned())
            .spawn(move || write_loop(&sink, &rx))?;
        Ok((
            Self { tx },
            UserLogWriter {
                thread: Some(thread),
            },
        ))
    }
}

/// How long the writer waits after a flush before it blocks for the next line.
/// Lines arriving meanwhile queue without waking it: under load the writer
/// wakes about every `LINGER` for a batch instead of once per line (a futex
/// wake and a context switch each, on the thread that logged). A line waits
/// at most this long more before it reaches the file.
const LINGER: std::time::Duration = std::time::Duration::from_millis(5);

fn write_loop(sink: &FileLogSink, rx: &Receiver<Line>) {
    let mut today = Utc::now().date_naive();
    while let Ok(line) = rx.recv() {
        let mut next = Some(line);
        // Write everything waiting, then flush once.
        while let Some(l) = next {
            if l.at.date_naive() != today {
                today = l.at.date_naive();
                sink.close_before(today);
            }
            if let Some(user) = &l.user {
                let _ = sink.append(user, l.at, &l.text);
            }
            let _ = sink.append_system(l.at, &l.text);
            next = rx.try_recv().ok();
        }
        sink.flush();
        std::thread::sleep(LINGER);
    }
    sink.flush();
}

impl<S> tracing_subscriber::Layer<S> for UserLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        attrs.record(&mut f);
        if let (Some(user), Some(span)) = (f.user_id, ctx.span(id)) {
            span.extensions_mut().insert(SpanUser(user));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        values.record(&mut f);
        if let (Some(user), Some(span)) = (f.user_id, ctx.span(id)) {
            span.extensions_mut().replace(SpanUser(user));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let user = f.user_id.clone().or_else(|| {
            ctx.event_scope(event).and_then(|scope| {
                scope
                    .from_root()
                    .filter_map(|span| span.extensions().get::<SpanUser>().map(|u| u.0.clone()))
                    .last()
            })
        });
        let at = Utc::now();
        let meta = event.metadata();
        let mut text = format!(
            "{} {:>5} {}: {}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            meta.level(),
            meta.target(),
            f.message
        );
        text.push_str(&f.rest);
        if let Some(u) = &user {
            let _ = write!(text, " user_id={u}");
        }
        let line = Line {
            at,
            user: user.and_then(|u| UserId::new(u).ok()),
            text,
        };
        if let Err(TrySendError::Full(_)) = self.tx.try_send(line) {
            metrics::counter!("ordermon_log_lines_dropped_total").increment(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn routes_by_event_field_and_by_span() {
        let dir = std::env::temp_dir().join(format!("ordermon-layer-{}", std::process::id()));
        let sink = Arc::new(FileLogSink::new(&dir, 8));
        let (layer, writer) = UserLogLayer::start(sink.clone(), 1024).unwrap();
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(user_id = %"alice", order = 7, "order accepted");
            let span = tracing::info_span!("owner", user_id = %"bob");
            let _g = span.enter();
            tracing::warn!("inside bob's owner");
            tracing::info!(user_id = "carol", "explicit wins");
        });
        writer.join();
        let today = Utc::now().date_naive();
        let alice = sink.read(&UserId::new("alice").unwrap(), today).unwrap();
        assert_eq!(alice.len(), 1);
        assert!(
            alice[0].contains("INFO")
                && alice[0].contains("order accepted")
                && alice[0].contains("order=7")
        );
        let bob = sink.read(&UserId::new("bob").unwrap(), today).unwrap();
        assert_eq!(bob.len(), 1);
        assert!(bob[0].contains("inside bob's owner"));
        assert_eq!(
            sink.read(&UserId::new("carol").unwrap(), today)
                .unwrap()
                .len(),
            1
        );
        let system = std::fs::read_to_string(sink.system_path(today)).unwrap();
        assert_eq!(system.lines().count(), 3);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
