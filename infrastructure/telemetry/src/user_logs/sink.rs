//! The file sink behind the per-user logs (the domain's `UserLogSink` port).

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, Utc};
use ordermon_domain::ids::UserId;
use ordermon_domain::ports::{LogPage, LogSinkError, UserLogSink};

/// Which file a line goes to: a user's day, or the system log's day (`None`).
/// Open files are found by this key, so a line costs no path formatting
/// unless its file has to be opened.
#[derive(Clone, PartialEq, Eq, Hash)]
struct FileKey {
    user: Option<UserId>,
    date: NaiveDate,
}

impl FileKey {
    fn user(user: &UserId, date: NaiveDate) -> Self {
        Self {
            user: Some(user.clone()),
            date,
        }
    }

    fn system(date: NaiveDate) -> Self {
        Self { user: None, date }
    }
}

struct Open {
    files: HashMap<FileKey, BufWriter<File>>,
    order: VecDeque<FileKey>,
}

/// Daily log files per user plus the system log, with a bound on open files.
pub struct FileLogSink {
    dir: PathBuf,
    max_open: usize,
    open: Mutex<Open>,
}

impl std::fmt::Debug for FileLogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileLogSink")
            .field("dir", &self.dir)
            .field("max_open", &self.max_open)
            .finish_non_exhaustive()
    }
}

fn io(e: &std::io::Error) -> LogSinkError {
    LogSinkError::Io(e.to_string())
}

impl FileLogSink {
    /// A sink writing under `dir` with at most `max_open` files open at once
    /// (the least recently written is closed first).
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>, max_open: usize) -> Self {
        Self {
            dir: dir.into(),
            max_open: max_open.max(1),
            open: Mutex::new(Open {
                files: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    /// The root folder.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of one user's day.
    #[must_use]
    pub fn user_path(&self, user: &UserId, date: NaiveDate) -> PathBuf {
        // The `user_` prefix keeps every id (even `..`) a plain folder name.
        self.dir
            .join("users")
            .join(format!("user_{user}"))
            .join(format!("user_{user}_{}.log", date.format("%Y-%m-%d")))
    }

    /// The system log of one day.
    #[must_use]
    pub fn system_path(&self, date: NaiveDate) -> PathBuf {
        self.dir
            .join("system")
            .join(format!("ordermon_{}.log", date.format("%Y-%m-%d")))
    }

    fn path_of(&self, key: &FileKey) -> PathBuf {
        match &key.user {
            Some(user) => self.user_path(user, key.date),
            None => self.system_path(key.date),
        }
    }

    fn write_line(&self, key: FileKey, line: &str) -> Result<(), LogSinkError> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !open.files.contains_key(&key) {
            let path = self.path_of(&key);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|e| io(&e))?;
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| io(&e))?;
            while open.files.len() >= self.max_open {
                let Some(old) = open.order.pop_front() else {
                    break;
                };
                if let Some(mut w) = open.files.remove(&old) {
                    let _ = w.flush();
                }
            }
            open.files.insert(key.clone(), BufWriter::new(file));
            open.order.push_back(key.clone());
        }
        let w = open
            .files
            .get_mut(&key)
            .ok_or_else(|| LogSinkError::Io("file vanished".to_owned()))?;
        w.write_all(line.as_bytes()).map_err(|e| io(&e))?;
        if !line.ends_with('\n') {
            w.write_all(b"\n").map_err(|e| io(&e))?;
        }
        Ok(())
    }

    /// Appends a line to the system log of the day of `at`.
    ///
    /// # Errors
    /// File system failures.
    pub fn append_system(&self, at: DateTime<Utc>, line: &str) -> Result<(), LogSinkError> {
        self.write_line(FileKey::system(at.date_naive()), line)
    }

    /// Writes buffered lines to disk.
    pub fn flush(&self) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for w in open.files.values_mut() {
            let _ = w.flush();
        }
    }

    /// Closes the files of days before `today` (rotation at midnight).
    pub fn close_before(&self, today: NaiveDate) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let stale: Vec<FileKey> = open
            .files
            .keys()
            .filter(|k| k.date != today)
            .cloned()
            .collect();
        for p in stale {
            if let Some(mut w) = open.files.remove(&p) {
                let _ = w.flush();
            }
            open.order.retain(|q| q != &p);
        }
    }

    /// Number of files open now.
    #[must_use]
    pub fn open_files(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .files
            .len()
    }
}

/// The date in a log file name (`..._YYYY-MM-DD.log`).
fn file_date(name: &str) -> Option<NaiveDate> {
    let stem = name.strip_suffix(".log")?;
    let date = stem.get(stem.len().checked_sub(10)?..)?;
    NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()
}

impl UserLogSink for FileLogSink {
    fn append(&self, user: &UserId, at: DateTime<Utc>, line: &str) -> Result<(), LogSinkError> {
        self.write_line(FileKey::user(user, at.date_naive()), line)
    }

    fn read_page(
        &self,
        user: &UserId,
        date: NaiveDate,
        from: u64,
        limit: usize,
    ) -> Result<LogPage, LogSinkError> {
        let key = FileKey::user(user, date);
        let path = self.path_of(&key);
        {
            let mut open = self
                .open
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(w) = open.files.get_mut(&key) {
                w.flush().map_err(|e| io(&e))?;
            }
        }
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LogPage::default()),
            Err(e) => return Err(io(&e)),
        };
        let mut reader = BufReader::new(file);
        reader.seek(SeekFrom::Start(from)).map_err(|e| io(&e))?;
        let mut page = LogPage::default();
        let mut at = from;
        let mut line = String::new();
        while page.lines.len() < limit.max(1) {
            line.clear();
            let n = reader.read_line(&mut line).map_err(|e| io(&e))?;
            if n == 0 {
                return Ok(page);
            }
            at += n as u64;
            page.lines
                .push(line.trim_end_matches(['\n', '\r']).to_owned());
        }
        // Full page: say where the next starts if anything follows.
        if !reader.fill_buf().map_err(|e| io(&e))?.is_empty() {
            page.next = Some(at);
        }
        Ok(page)
    }

    fn purge_before(&self, cutoff: NaiveDate) -> Result<usize, LogSinkError> {
        self.close_before(cutoff);
        let doomed = self.files_before(cutoff)?;
        for path in &doomed {
            fs::remove_file(path).map_err(|e| io(&e))?;
        }
        Ok(doomed.len())
    }
}

impl FileLogSink {
    /// Every user and system log file dated before `cutoff` (what
    /// [`UserLogSink::purge_before`] deletes), without deleting anything.
    ///
    /// # Errors
    /// A folder under the root cannot be read.
    pub fn files_before(&self, cutoff: NaiveDate) -> Result<Vec<PathBuf>, LogSinkError> {
        let mut found = Vec::new();
        let mut dirs = vec![self.dir.join("users"), self.dir.join("system")];
        while let Some(dir) = dirs.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&e)),
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(file_date)
                    .is_some_and(|date| date < cutoff)
                {
                    found.push(path);
                }
            }
        }
        found.sort();
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!("ordermon-logs-{}", uuid_like()));
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn uuid_like() -> String {
        format!("{}-{:?}", std::process::id(), std::time::SystemTime::now())
            .replace([' ', ':', '{', '}', ','], "")
    }

    #[test]
    fn names_and_contents() {
        let dir = tmp();
        let sink = FileLogSink::new(&dir, 8);
        let alice = UserId::new("alice").unwrap();
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
        sink.append(&alice, at, "hello").unwrap();
        sink.append(&alice, at, "world\n").unwrap();
        let path = dir.join("users/user_alice/user_alice_2026-11-22.log");
        assert_eq!(sink.user_path(&alice, at.date_naive()), path);
        assert_eq!(
            sink.read(&alice, at.date_naive()).unwrap(),
            ["hello", "world"]
        );
        sink.flush();
        assert_eq!(fs::read_to_string(&path).unwrap(), "hello\nworld\n");
        // Midnight: the next day's line goes to a new file.
        sink.append(&alice, at + chrono::Duration::hours(14), "tomorrow")
            .unwrap();
        assert_eq!(
            sink.read(&alice, at.date_naive().succ_opt().unwrap())
                .unwrap(),
            ["tomorrow"]
        );
        assert!(
            sink.read(&UserId::new("bob").unwrap(), at.date_naive())
                .unwrap()
                .is_empty()
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bounded_open_files() {
        let dir = tmp();
        let sink = FileLogSink::new(&dir, 3);
        let at = Utc::now();
        for i in 0..10 {
            sink.append(&UserId::new(format!("u{i}")).unwrap(), at, "x")
                .unwrap();
        }
        assert_eq!(sink.open_files(), 3);
        for i in 0..10 {
            assert_eq!(
                sink.read(&UserId::new(format!("u{i}")).unwrap(), at.date_naive())
                    .unwrap(),
                ["x"]
            );
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn retention_deletes_only_old_days() {
        let dir = tmp();
        let sink = FileLogSink::new(&dir, 8);
        let alice = UserId::new("alice").unwrap();
        let today = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        for days in 0..10 {
            let at = today - chrono::Duration::days(days);
            sink.append(&alice, at, "line").unwrap();
            sink.append_system(at, "sys").unwrap();
        }
        sink.flush();
        // Keep 7 days: today and the 6 before.
        let cutoff = (today - chrono::Duration::days(6)).date_naive();
        let removed = sink.purge_before(cutoff).unwrap();
        assert_eq!(removed, 6, "3 old user files and 3 old system files");
        assert!(sink.read(&alice, cutoff).unwrap().len() == 1);
        assert!(
            sink.read(&alice, cutoff.pred_opt().unwrap())
                .unwrap()
                .is_empty()
        );
        assert!(sink.system_path(today.date_naive()).exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn file_dates() {
        assert_eq!(
            file_date("user_a_2026-01-02.log"),
            NaiveDate::from_ymd_opt(2026, 1, 2)
        );
        assert_eq!(file_date("x.log"), None);
        assert_eq!(file_date("user_a_2026-13-02.log"), None);
    }

    #[test]
    fn pages_read_only_what_they_return_and_chain_by_position() {
        let dir = tmp();
        let sink = FileLogSink::new(&dir, 4);
        let alice = UserId::new("alice").unwrap();
        let at = chrono::Utc::now();
        for i in 0..25 {
            sink.append(&alice, at, &format!("line {i}")).unwrap();
        }
        let mut from = 0;
        let mut pages = Vec::new();
        loop {
            let page = sink.read_page(&alice, at.date_naive(), from, 10).unwrap();
            pages.push(page.lines.clone());
            match page.next {
                Some(next) => from = next,
                None => break,
            }
        }
        assert_eq!(
            pages.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![10, 10, 5]
        );
        assert_eq!(pages[1][0], "line 10");
        assert_eq!(pages.concat(), sink.read(&alice, at.date_naive()).unwrap());
        // Exactly a page left: no further page is promised.
        let last = sink.read_page(&alice, at.date_naive(), 0, 25).unwrap();
        assert_eq!((last.lines.len(), last.next), (25, None));
        // Past the end, or another day: empty.
        let past = sink
            .read_page(&alice, at.date_naive(), 1 << 40, 10)
            .unwrap();
        assert!(past.lines.is_empty() && past.next.is_none());
        let _ = std::fs::remove_dir_all(dir);
    }
}
