//! Streaming input: one row at a time from a CSV or JSONL file, in bounded
//! memory whatever the file holds.
//!
//! Both formats become the same [`Row`]: the values of the row kind's known
//! columns, in the order of its column list, with empty values absent. A row
//! that cannot be decoded (bad UTF-8, not a JSON object, a JSON number where a
//! decimal string belongs, an unknown key, the wrong number of CSV fields)
//! comes back as a per-row error, to be rejected; only an unreadable file, a
//! malformed CSV header or a record beyond [`MAX_RECORD`] stops the import.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::ImportError;

/// The longest record (CSV) or line (JSONL) accepted, in bytes. A longer JSONL
/// line is skipped and rejected; a longer CSV record stops the import (its end
/// cannot be found reliably once a quote may be open).
pub const MAX_RECORD: u64 = 1 << 20;

/// The input format, chosen by the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.csv`: a header line naming the columns, then one row per record.
    Csv,
    /// `.jsonl`: one JSON object per line; blank lines are ignored.
    Jsonl,
}

impl Format {
    /// The format of `path` by its extension (`.csv`, `.jsonl`; any case).
    ///
    /// # Errors
    /// [`ImportError::Format`] for any other extension.
    pub fn of(path: &Path) -> Result<Self, ImportError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("csv") => Ok(Self::Csv),
            Some("jsonl") => Ok(Self::Jsonl),
            _ => Err(ImportError::Format {
                path: path.display().to_string(),
            }),
        }
    }

    /// The extension, without the dot.
    #[must_use]
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
        }
    }
}

/// The columns a row kind knows, and which of them a CSV header must name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Columns {
    pub(crate) known: &'static [&'static str],
    pub(crate) required: &'static [&'static str],
}

/// Columns (or JSON keys) every row kind ignores: the two a rejects file adds,
/// so that a corrected rejects file can be imported as it is.
fn ignored(name: &str) -> bool {
    name == "reject_line" || name == "reject_reason"
}

/// One decoded row: the values of the known columns, by position in
/// [`Columns::known`]; empty values are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) values: Vec<Option<String>>,
}

impl Row {
    /// The value of known column `i`.
    pub(crate) fn get(&self, i: usize) -> Option<&str> {
        self.values.get(i).and_then(|v| v.as_deref())
    }
}

/// A row as it was in the file, for the rejects file.
#[derive(Debug, Clone)]
pub(crate) enum Raw {
    /// The CSV fields (lossily decoded when not UTF-8).
    Csv(Vec<String>),
    /// The JSONL line (lossily decoded when not UTF-8), without its newline.
    Json(String),
}

/// One row read from the file.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// The line it starts on (1-based; a CSV header is line 1).
    pub(crate) line: u64,
    /// The decoded row, or why it could not be decoded.
    pub(crate) row: Result<Row, String>,
    /// The row as it was.
    pub(crate) raw: Raw,
}

/// Counts the bytes read since the last record started; refuses to read past
/// [`MAX_RECORD`] of them, which bounds what the CSV reader buffers for one
/// record, quoted fields over many lines included.
struct Bounded<R> {
    inner: R,
    since_record: Arc<AtomicU64>,
    /// Slack for what the CSV reader reads ahead beyond the record.
    limit: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let seen = self.since_record.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if seen > self.limit {
            return Err(io::Error::new(io::ErrorKind::InvalidData, RecordTooLong));
        }
        Ok(n)
    }
}

#[derive(Debug)]
struct RecordTooLong;

impl std::fmt::Display for RecordTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "record longer than {MAX_RECORD} bytes")
    }
}

impl std::error::Error for RecordTooLong {}

/// The CSV reader's own buffer.
const CSV_BUFFER: usize = 64 * 1024;

/// Reads rows of one kind from one file.
pub(crate) struct RowReader {
    columns: Columns,
    /// The CSV header's names, ignored columns left out (empty for JSONL).
    header: Vec<String>,
    source: Source,
    /// The file's size, for progress.
    size: u64,
}

enum Source {
    Csv {
        reader: csv::Reader<Bounded<File>>,
        /// Known column index → field index in the file.
        index: Vec<Option<usize>>,
        /// Field count the header announced.
        width: usize,
        /// Fields kept in the rejects file (all but the ignored columns).
        keep: Vec<usize>,
        /// Whether the file's last byte is a newline (the last record's
        /// line is then counted from its terminator).
        ends_with_newline: bool,
        since_record: Arc<AtomicU64>,
        record: csv::ByteRecord,
    },
    Jsonl {
        reader: BufReader<File>,
        line: u64,
        offset: u64,
        buf: Vec<u8>,
    },
}

impl std::fmt::Debug for RowReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowReader")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl RowReader {
    /// Opens `path` in `format`; for CSV, reads and checks the header.
    ///
    /// # Errors
    /// [`ImportError::Open`] when the file cannot be opened;
    /// [`ImportError::Header`] for a CSV header that is missing, repeats a
    /// column, names an unknown one or lacks a required one.
    pub(crate) fn open(path: &Path, format: Format, columns: Columns) -> Result<Self, ImportError> {
        let open_error = |source: io::Error| ImportError::Open {
            path: path.display().to_string(),
            source,
        };
        let file = File::open(path).map_err(open_error)?;
        let size = file.metadata().map_err(open_error)?.len();
        let mut names = Vec::new();
        let source = match format {
            Format::Csv => {
                let since_record = Arc::new(AtomicU64::new(0));
                let bounded = Bounded {
                    inner: file,
                    since_record: since_record.clone(),
                    limit: MAX_RECORD + CSV_BUFFER as u64,
                };
                let mut reader = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .flexible(true)
                    .buffer_capacity(CSV_BUFFER)
                    .from_reader(bounded);
                let mut header = csv::ByteRecord::new();
                let got = reader
                    .read_byte_record(&mut header)
                    .map_err(|e| csv_error(e, 1))?;
                if !got {
                    return Err(ImportError::Header(
                        "the file is empty: a CSV file starts with a header line".to_owned(),
                    ));
                }
                since_record.store(0, Ordering::Relaxed);
                let index = header_index(&header, columns)?;
                let ends_with_newline = last_byte(path).map_err(open_error)? == Some(b'\n');
                let mut keep = Vec::new();
                for (i, raw) in header.iter().enumerate() {
                    let name = String::from_utf8_lossy(raw);
                    let name = name.trim_start_matches('\u{feff}').trim();
                    if !ignored(name) {
                        keep.push(i);
                        names.push(name.to_owned());
                    }
                }
                Source::Csv {
                    reader,
                    index,
                    width: header.len(),
                    keep,
                    ends_with_newline,
                    since_record,
                    record: csv::ByteRecord::new(),
                }
            }
            Format::Jsonl => Source::Jsonl {
                reader: BufReader::with_capacity(64 * 1024, file),
                line: 0,
                offset: 0,
                buf: Vec::new(),
            },
        };
        Ok(Self {
            columns,
            header: names,
            source,
            size,
        })
    }

    /// The CSV header's names without the ignored columns (empty for JSONL).
    pub(crate) fn header(&self) -> &[String] {
        &self.header
    }

    /// Bytes of the file read so far.
    pub(crate) fn offset(&self) -> u64 {
        match &self.source {
            Source::Csv { reader, .. } => reader.position().byte(),
            Source::Jsonl { offset, .. } => *offset,
        }
    }

    /// The next row, `None` at the end of the file.
    ///
    /// # Errors
    /// [`ImportError::Read`] when reading fails or a CSV record is too long.
    pub(crate) fn next_item(&mut self) -> Result<Option<Item>, ImportError> {
        match &mut self.source {
            Source::Csv {
                reader,
                index,
                width,
                keep,
                ends_with_newline,
                since_record,
                record,
            } => {
                let before = reader.position().line();
                let got = reader
                    .read_byte_record(record)
                    .map_err(|e| csv_error(e, before))?;
                since_record.store(0, Ordering::Relaxed);
                if !got {
                    return Ok(None);
                }
                // The record's own start position counts the blank lines the
                // reader skipped before it; its end does not: count back from
                // the end over the newlines inside quoted fields.
                let end = reader.position();
                let inside: u64 = record
                    .iter()
                    .map(|f| f.iter().filter(|b| **b == b'\n').count() as u64)
                    .sum();
                let terminated = *ends_with_newline || end.byte() < self.size;
                let line = end
                    .line()
                    .saturating_sub(inside + u64::from(terminated))
                    .max(before);
                let lossy = |f: &[u8]| String::from_utf8_lossy(f).into_owned();
                let raw: Vec<String> = if record.len() == *width {
                    keep.iter()
                        .filter_map(|i| record.get(*i))
                        .map(lossy)
                        .collect()
                } else {
                    record.iter().map(lossy).collect()
                };
                let row = csv_row(record, index, *width, self.columns);
                Ok(Some(Item {
                    line,
                    row,
                    raw: Raw::Csv(raw),
                }))
            }
            Source::Jsonl {
                reader,
                line,
                offset,
                buf,
            } => loop {
                let Some((read, overlong)) = next_line(reader, buf)? else {
                    return Ok(None);
                };
                *line += 1;
                *offset += read;
                if overlong {
                    return Ok(Some(Item {
                        line: *line,
                        row: Err(format!("line longer than {MAX_RECORD} bytes")),
                        raw: Raw::Json(String::new()),
                    }));
                }
                let text = trim_line(buf);
                if text.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let row = json_row(text, self.columns);
                return Ok(Some(Item {
                    line: *line,
                    row,
                    raw: Raw::Json(String::from_utf8_lossy(text).into_owned()),
                }));
            },
        }
    }
}

/// The file's last byte, `None` when it is empty.
fn last_byte(path: &Path) -> io::Result<Option<u8>> {
    use std::io::{Seek as _, SeekFrom};
    let mut f = File::open(path)?;
    if f.metadata()?.len() == 0 {
        return Ok(None);
    }
    f.seek(SeekFrom::End(-1))?;
    let mut b = [0u8; 1];
    f.read_exact(&mut b)?;
    Ok(Some(b[0]))
}

fn csv_error(e: csv::Error, line: u64) -> ImportError {
    let too_long = matches!(
        e.kind(),
        csv::ErrorKind::Io(io) if io.get_ref().is_some_and(|inner| inner.is::<RecordTooLong>())
    );
    let message = if too_long {
        format!("record longer than {MAX_RECORD} bytes")
    } else {
        e.to_string()
    };
    ImportError::Read { line, message }
}

/// Maps the header's names to the known columns.
fn header_index(
    header: &csv::ByteRecord,
    columns: Columns,
) -> Result<Vec<Option<usize>>, ImportError> {
    let mut index = vec![None; columns.known.len()];
    let mut unknown = Vec::new();
    for (i, raw) in header.iter().enumerate() {
        let Ok(name) = std::str::from_utf8(raw) else {
            return Err(ImportError::Header(format!(
                "column {} of the header is not UTF-8",
                i + 1
            )));
        };
        let name = name.trim_start_matches('\u{feff}').trim();
        if ignored(name) {
            continue;
        }
        match columns.known.iter().position(|k| *k == name) {
            Some(k) if index[k].is_some() => {
                return Err(ImportError::Header(format!(
                    "column {name:?} appears twice"
                )));
            }
            Some(k) => index[k] = Some(i),
            None => unknown.push(format!("{name:?}")),
        }
    }
    if !unknown.is_empty() {
        return Err(ImportError::Header(format!(
            "unknown column(s) {}; the columns are: {}",
            unknown.join(", "),
            columns.known.join(", ")
        )));
    }
    let missing: Vec<&str> = columns
        .required
        .iter()
        .filter(|r| {
            columns
                .known
                .iter()
                .position(|k| k == *r)
                .is_none_or(|k| index[k].is_none())
        })
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(ImportError::Header(format!(
            "missing required column(s): {}",
            missing.join(", ")
        )));
    }
    Ok(index)
}

fn csv_row(
    record: &csv::ByteRecord,
    index: &[Option<usize>],
    width: usize,
    columns: Columns,
) -> Result<Row, String> {
    if record.len() != width {
        return Err(format!(
            "expected {width} fields as in the header, found {}",
            record.len()
        ));
    }
    let mut values = Vec::with_capacity(columns.known.len());
    for (k, i) in index.iter().enumerate() {
        let value = match i.and_then(|i| record.get(i)) {
            None => None,
            Some(bytes) => {
                let text = std::str::from_utf8(bytes)
                    .map_err(|_| format!("{}: not valid UTF-8", columns.known[k]))?;
                (!text.is_empty()).then(|| text.to_owned())
            }
        };
        values.push(value);
    }
    Ok(Row { values })
}

/// Reads one line into `buf` (without keeping more than [`MAX_RECORD`] bytes
/// of it); returns the bytes consumed and whether the line was too long, or
/// `None` at the end of the file.
fn next_line(
    reader: &mut BufReader<File>,
    buf: &mut Vec<u8>,
) -> Result<Option<(u64, bool)>, ImportError> {
    buf.clear();
    let mut consumed = 0u64;
    let mut overlong = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(ImportError::Read {
                    line: 0,
                    message: e.to_string(),
                });
            }
        };
        if available.is_empty() {
            return Ok((consumed > 0).then_some((consumed, overlong)));
        }
        let (take, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if !overlong {
            if (buf.len() + take) as u64 > MAX_RECORD + 2 {
                overlong = true;
                buf.clear();
                buf.shrink_to(64 * 1024);
            } else {
                buf.extend_from_slice(&available[..take]);
            }
        }
        reader.consume(take);
        consumed += take as u64;
        if done {
            return Ok(Some((consumed, overlong)));
        }
    }
}

/// The line without its `\n` / `\r\n`.
fn trim_line(buf: &[u8]) -> &[u8] {
    let mut end = buf.len();
    while end > 0 && matches!(buf[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &buf[..end]
}

fn json_row(text: &[u8], columns: Columns) -> Result<Row, String> {
    let value: serde_json::Value =
        serde_json::from_slice(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let serde_json::Value::Object(map) = value else {
        return Err("not a JSON object".to_owned());
    };
    let mut values = vec![None; columns.known.len()];
    for (key, value) in map {
        if ignored(&key) {
            continue;
        }
        let Some(k) = columns.known.iter().position(|c| *c == key) else {
            return Err(format!("unknown field {key:?}"));
        };
        values[k] = match value {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) if s.is_empty() => None,
            serde_json::Value::String(s) => Some(s),
            serde_json::Value::Bool(b) => Some(b.to_string()),
            serde_json::Value::Number(_) => {
                return Err(format!(
                    "{key}: must be a string (decimals are JSON strings: a number may already have lost precision)"
                ));
            }
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                return Err(format!("{key}: must be a string"));
            }
        };
    }
    Ok(Row { values })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const COLUMNS: Columns = Columns {
        known: &["a", "b", "c"],
        required: &["a", "b"],
    };

    fn file(ext: &str, bytes: &[u8]) -> tempfile_path::TempPath {
        tempfile_path::TempPath::with(ext, bytes)
    }

    /// A file under the temp dir, removed on drop (no extra crate needed).
    mod tempfile_path {
        use std::path::PathBuf;

        pub(crate) struct TempPath(pub(crate) PathBuf);

        impl TempPath {
            pub(crate) fn with(ext: &str, bytes: &[u8]) -> Self {
                let p = std::env::temp_dir().join(format!(
                    "ordermon-read-{}.{ext}",
                    uuid::Uuid::now_v7().simple()
                ));
                std::fs::write(&p, bytes).unwrap();
                Self(p)
            }
        }

        impl Drop for TempPath {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    fn all(path: &Path, format: Format) -> Result<Vec<Item>, ImportError> {
        let mut r = RowReader::open(path, format, COLUMNS)?;
        let mut items = Vec::new();
        while let Some(item) = r.next_item()? {
            items.push(item);
        }
        assert_eq!(r.offset(), r.size);
        Ok(items)
    }

    #[test]
    fn format_by_extension() {
        assert_eq!(Format::of(Path::new("x/orders.CSV")).unwrap(), Format::Csv);
        assert_eq!(Format::of(Path::new("f.jsonl")).unwrap(), Format::Jsonl);
        for bad in ["f.json", "f", "f.csv.gz", "f.txt"] {
            let e = Format::of(Path::new(bad)).unwrap_err();
            assert!(e.to_string().contains(".csv or .jsonl"), "{e}");
        }
    }

    #[test]
    fn csv_rows_with_line_numbers() {
        let f = file(
            "csv",
            b"\xef\xbb\xbfa,b,reject_reason\n1,x,old\n\n2,,\n3,\"multi\nline\",z\n4\n5,\xff,\n",
        );
        let items = all(&f.0, Format::Csv).unwrap();
        let lines: Vec<u64> = items.iter().map(|i| i.line).collect();
        assert_eq!(lines, [2, 4, 5, 7, 8]);
        assert_eq!(items[0].row.as_ref().unwrap().get(0), Some("1"));
        assert_eq!(items[0].row.as_ref().unwrap().get(1), Some("x"));
        assert_eq!(items[1].row.as_ref().unwrap().get(1), None);
        assert_eq!(items[2].row.as_ref().unwrap().get(1), Some("multi\nline"));
        assert!(
            items[3]
                .row
                .as_ref()
                .unwrap_err()
                .contains("expected 3 fields")
        );
        assert!(items[4].row.as_ref().unwrap_err().contains("UTF-8"));

        // The last record without a newline, after blank lines.
        let f = file("csv", b"a,b\n1,x\n\n\n2,\"y\nz\"");
        let lines: Vec<u64> = all(&f.0, Format::Csv)
            .unwrap()
            .iter()
            .map(|i| i.line)
            .collect();
        assert_eq!(lines, [2, 5]);
    }

    #[test]
    fn csv_header_errors() {
        for (bytes, want) in [
            (&b""[..], "empty"),
            (b"a,b,a\n", "twice"),
            (b"a,b,qty\n", "unknown column"),
            (b"a,c\n1,2\n", "missing required column(s): b"),
            (b"a,\xff\n", "not UTF-8"),
        ] {
            let f = file("csv", bytes);
            let e = all(&f.0, Format::Csv).unwrap_err();
            assert!(matches!(e, ImportError::Header(_)), "{e}");
            assert!(e.to_string().contains(want), "{e}");
        }
    }

    #[test]
    fn csv_huge_record_is_an_error_not_a_panic() {
        let mut bytes = b"a,b\n1,\"".to_vec();
        bytes.extend(std::iter::repeat_n(b'x', (MAX_RECORD as usize) * 2));
        bytes.extend_from_slice(b"\"\n");
        let f = file("csv", &bytes);
        let e = all(&f.0, Format::Csv).unwrap_err();
        assert!(e.to_string().contains("longer than"), "{e}");
    }

    #[test]
    fn jsonl_rows_and_rejections() {
        let mut bytes = b"{\"a\":\"1\",\"b\":true,\"reject_line\":3}\n\n   \r\n".to_vec();
        bytes.extend_from_slice(b"{\"a\":1}\n[1]\nnot json\n{\"zz\":\"1\"}\n{\"a\":\"\xff\"}\n");
        bytes.extend_from_slice(b"{\"a\":\"");
        bytes.extend(std::iter::repeat_n(b'y', (MAX_RECORD as usize) + 10));
        bytes.extend_from_slice(b"\"}\n{\"a\":\"last\",\"c\":null}");
        let f = file("jsonl", &bytes);
        let items = all(&f.0, Format::Jsonl).unwrap();
        let lines: Vec<u64> = items.iter().map(|i| i.line).collect();
        assert_eq!(lines, [1, 4, 5, 6, 7, 8, 9, 10]);
        let row = items[0].row.as_ref().unwrap();
        assert_eq!((row.get(0), row.get(1)), (Some("1"), Some("true")));
        let errors: Vec<String> = items[1..7]
            .iter()
            .map(|i| i.row.clone().unwrap_err())
            .collect();
        assert!(errors[0].contains("must be a string"), "{errors:?}");
        assert!(errors[1].contains("not a JSON object"), "{errors:?}");
        assert!(errors[2].contains("not valid JSON"), "{errors:?}");
        assert!(errors[3].contains("unknown field \"zz\""), "{errors:?}");
        assert!(errors[4].contains("not valid JSON"), "{errors:?}");
        assert!(errors[5].contains("longer than"), "{errors:?}");
        assert_eq!(items[7].row.as_ref().unwrap().get(0), Some("last"));
    }

    #[test]
    fn empty_jsonl_has_no_rows() {
        let f = file("jsonl", b"");
        assert!(all(&f.0, Format::Jsonl).unwrap().is_empty());
    }

    #[test]
    fn garbage_never_panics() {
        // A deterministic pseudo-random byte soup, as CSV and as JSONL.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut bytes = b"a,b,c\n".to_vec();
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            bytes.push(match x % 11 {
                0 => b'\n',
                1 => b',',
                2 => b'"',
                3 => b'{',
                4 => b'}',
                5 => 0xff,
                _ => b'a' + (x % 26) as u8,
            });
        }
        for (ext, format) in [("csv", Format::Csv), ("jsonl", Format::Jsonl)] {
            let f = file(ext, &bytes);
            if let Ok(mut r) = RowReader::open(&f.0, format, COLUMNS) {
                while let Ok(Some(_)) = r.next_item() {}
            }
        }
    }
}
