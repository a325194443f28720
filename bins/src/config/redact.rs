//! Keeping secrets out of output: secret strings, and URL passwords (masked by
//! the SQL crate's [`ordermon_sql::redact_url`], which knows every URL form we use).

use secrecy::SecretString;

pub use ordermon_sql::redact_url as url;

/// What a secret prints as.
pub const REDACTED: &str = "[REDACTED]";

/// `#[serde(serialize_with = "redact::secret")]`: a set secret always serializes as
/// [`REDACTED`], so no serialized configuration can leak it.
///
/// # Errors
/// Those of the serializer.
pub fn secret<S: serde::Serializer>(value: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_str(REDACTED),
        None => s.serialize_none(),
    }
}
