//! The JWT signing secret: configured, or generated once and kept in a file so
//! `monitor-server token` and `monitor-server serve` agree across restarts.

use std::fs;
use std::io::Write;
use std::path::Path;

use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

use crate::config::AuthSettings;

/// Bytes of randomness in a generated secret (hex encoded: twice as many characters).
const GENERATED_BYTES: usize = 32;

/// Where the secret came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    /// `auth.jwt_secret`.
    Configured,
    /// Read from `auth.jwt_secret_file`.
    File,
    /// Generated now and written to `auth.jwt_secret_file`.
    Generated,
    /// Generated now and kept in memory only (`auth.jwt_secret_file = ""`).
    Ephemeral,
}

/// Why the secret could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file could not be read or written.
    #[error("JWT secret file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds fewer than 16 characters.
    #[error("JWT secret file {path} holds fewer than 16 characters")]
    TooShort {
        /// The file.
        path: String,
    },
}

/// The signing secret for `auth`: `jwt_secret` when set; else the content of
/// `jwt_secret_file`, which is created (mode 0600, random 256 bits) when missing.
///
/// # Errors
/// See [`SecretError`].
pub fn resolve(auth: &AuthSettings) -> Result<(SecretString, SecretSource), SecretError> {
    if let Some(secret) = &auth.jwt_secret {
        return Ok((secret.clone(), SecretSource::Configured));
    }
    let path = auth.jwt_secret_file.as_path();
    if path.as_os_str().is_empty() {
        return Ok((generate(), SecretSource::Ephemeral));
    }
    let io = |source| SecretError::Io {
        path: path.display().to_string(),
        source,
    };
    match fs::read_to_string(path) {
        Ok(text) => {
            let secret = text.trim();
            if secret.len() < 16 {
                return Err(SecretError::TooShort {
                    path: path.display().to_string(),
                });
            }
            Ok((SecretString::from(secret), SecretSource::File))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = generate();
            match write_new(path, secret.expose_secret()) {
                Ok(()) => Ok((secret, SecretSource::Generated)),
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => resolve(auth),
                Err(e) => Err(io(e)),
            }
        }
        Err(e) => Err(io(e)),
    }
}

fn generate() -> SecretString {
    let mut bytes = [0u8; GENERATED_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    SecretString::from(hex)
}

/// Creates `path` (and its directory) readable by the owner only, failing if it exists.
fn write_new(path: &Path, secret: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(secret.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ordermon-secret-{name}-{}-{}",
            std::process::id(),
            rand::rng().next_u64()
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn configured_secret_wins() {
        let auth = AuthSettings {
            jwt_secret: Some(SecretString::from("configured-secret-0123")),
            ..AuthSettings::default()
        };
        let (s, src) = resolve(&auth).unwrap();
        assert_eq!(src, SecretSource::Configured);
        assert_eq!(s.expose_secret(), "configured-secret-0123");
    }

    #[test]
    fn generated_once_then_read_back_with_owner_only_permissions() {
        let dir = temp_dir("gen");
        let auth = AuthSettings {
            jwt_secret_file: dir.join("nested/jwt_secret"),
            ..AuthSettings::default()
        };
        let (first, src) = resolve(&auth).unwrap();
        assert_eq!(src, SecretSource::Generated);
        assert_eq!(first.expose_secret().len(), GENERATED_BYTES * 2);
        let (second, src) = resolve(&auth).unwrap();
        assert_eq!(src, SecretSource::File);
        assert_eq!(first.expose_secret(), second.expose_secret());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&auth.jwt_secret_file)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn empty_file_setting_means_ephemeral_and_short_files_are_refused() {
        let auth = AuthSettings {
            jwt_secret_file: std::path::PathBuf::new(),
            ..AuthSettings::default()
        };
        assert_eq!(resolve(&auth).unwrap().1, SecretSource::Ephemeral);
        let dir = temp_dir("short");
        let path = dir.join("jwt_secret");
        fs::write(&path, "short\n").unwrap();
        let auth = AuthSettings {
            jwt_secret_file: path,
            ..AuthSettings::default()
        };
        assert!(matches!(resolve(&auth), Err(SecretError::TooShort { .. })));
        fs::remove_dir_all(dir).unwrap();
    }
}
