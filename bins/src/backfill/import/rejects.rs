//! The rejects file: every refused row with its line number and reason, in the
//! input's own format, so that the file can be corrected and imported as it is
//! (the importer ignores the `reject_line` and `reject_reason` columns).
//!
//! CSV: `reject_line,reject_reason,` then the input's header and the row's
//! fields as they were. JSONL: the row's object with `reject_line` and
//! `reject_reason` added (a line that was no JSON object keeps its text under
//! `raw`). The file is created with the first reject; a run without rejects
//! removes the one a previous run left.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use super::ImportError;
use super::read::{Format, Raw};

/// The default rejects path of `file`: `orders.csv` → `orders.rejects.csv`.
#[must_use]
pub fn default_path(file: &Path, format: Format) -> PathBuf {
    let stem = file
        .file_stem()
        .map_or_else(|| "import".into(), |s| s.to_string_lossy().into_owned());
    file.with_file_name(format!("{stem}.rejects.{}", format.extension()))
}

enum Sink {
    Csv(Box<csv::Writer<BufWriter<File>>>),
    Json(BufWriter<File>),
}

/// Writes rejected rows.
pub(crate) struct Rejects {
    path: PathBuf,
    format: Format,
    /// The input's CSV header, repeated after the two reject columns.
    header: Vec<String>,
    sink: Option<Sink>,
    count: u64,
}

impl std::fmt::Debug for Rejects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rejects")
            .field("path", &self.path)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl Rejects {
    pub(crate) fn new(path: PathBuf, format: Format, header: Vec<String>) -> Self {
        Self {
            path,
            format,
            header,
            sink: None,
            count: 0,
        }
    }

    fn error(&self, source: std::io::Error) -> ImportError {
        ImportError::Rejects {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn csv_error(&self, e: csv::Error) -> ImportError {
        self.error(std::io::Error::other(e))
    }

    fn sink(&mut self) -> Result<&mut Sink, ImportError> {
        if self.sink.is_none() {
            let file = File::create(&self.path).map_err(|e| self.error(e))?;
            let out = BufWriter::new(file);
            let sink = match self.format {
                Format::Csv => {
                    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(out);
                    let mut header = vec!["reject_line".to_owned(), "reject_reason".to_owned()];
                    header.extend(self.header.iter().cloned());
                    w.write_record(&header).map_err(|e| self.csv_error(e))?;
                    Sink::Csv(Box::new(w))
                }
                Format::Jsonl => Sink::Json(out),
            };
            self.sink = Some(sink);
        }
        self.sink.as_mut().ok_or_else(|| ImportError::Rejects {
            path: String::new(),
            source: std::io::Error::other("no sink"),
        })
    }

    /// Writes one rejected row.
    pub(crate) fn write(&mut self, line: u64, reason: &str, raw: &Raw) -> Result<(), ImportError> {
        self.count += 1;
        let line_text = line.to_string();
        let result = match (self.sink()?, raw) {
            (Sink::Csv(w), Raw::Csv(fields)) => {
                let mut record = vec![line_text.as_str(), reason];
                record.extend(fields.iter().map(String::as_str));
                w.write_record(&record).map_err(std::io::Error::other)
            }
            (Sink::Csv(w), Raw::Json(text)) => w
                .write_record([line_text.as_str(), reason, text.as_str()])
                .map_err(std::io::Error::other),
            (Sink::Json(out), raw) => {
                let mut object = match raw {
                    Raw::Json(text) => match serde_json::from_str::<serde_json::Value>(text) {
                        Ok(serde_json::Value::Object(map)) => map,
                        _ => {
                            let mut map = serde_json::Map::new();
                            map.insert("raw".to_owned(), serde_json::Value::String(text.clone()));
                            map
                        }
                    },
                    Raw::Csv(fields) => {
                        let mut map = serde_json::Map::new();
                        map.insert(
                            "raw".to_owned(),
                            serde_json::Value::String(fields.join(",")),
                        );
                        map
                    }
                };
                object.insert("reject_line".to_owned(), serde_json::Value::from(line));
                object.insert(
                    "reject_reason".to_owned(),
                    serde_json::Value::String(reason.to_owned()),
                );
                serde_json::to_writer(&mut *out, &object)
                    .map_err(std::io::Error::other)
                    .and_then(|()| out.write_all(b"\n"))
            }
        };
        result.map_err(|e| self.error(e))
    }

    /// Flushes the file (or removes a stale one when nothing was rejected);
    /// returns its path when it holds rows.
    pub(crate) fn finish(mut self) -> Result<Option<PathBuf>, ImportError> {
        match self.sink.take() {
            None => {
                match std::fs::remove_file(&self.path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(self.error(e)),
                }
                Ok(None)
            }
            Some(Sink::Csv(mut w)) => {
                w.flush().map_err(|e| self.error(e))?;
                Ok(Some(self.path))
            }
            Some(Sink::Json(mut out)) => {
                out.flush().map_err(|e| self.error(e))?;
                Ok(Some(self.path))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_paths() {
        assert_eq!(
            default_path(Path::new("/data/orders.csv"), Format::Csv),
            PathBuf::from("/data/orders.rejects.csv")
        );
        assert_eq!(
            default_path(Path::new("fills.2026.jsonl"), Format::Jsonl),
            PathBuf::from("fills.2026.rejects.jsonl")
        );
    }
}
