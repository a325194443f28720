//! Redis clients from the configured URL: `redis://` is plain TCP, `rediss://` is
//! TLS (rustls), verified against the system's certificate store or, when a CA
//! file is configured, against that CA alone — the one way to trust a private
//! CA, since a Redis URL cannot name one. (`rediss://…/#insecure`, no
//! verification, is refused on connect: the crate's insecure mode is not built.)
//!
//! The cache's pool, its invalidation feed and the bus all build their clients
//! here, so they agree on what a URL and a CA file mean.

use std::path::{Path, PathBuf};

use redis::{Client, IntoConnectionInfo, TlsCertificates};

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not a Redis URL the client understands.
    #[error("invalid redis url: {0}")]
    Url(#[source] redis::RedisError),
    /// A CA file was given for a URL that is not `rediss://`.
    #[error("a CA file ({}) needs a rediss:// url", .0.display())]
    CaWithoutTls(PathBuf),
    /// The CA file could not be read.
    #[error("cannot read the redis CA file {}: {source}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The CA file holds no usable PEM certificate.
    #[error("the redis CA file {} holds no usable certificate: {source}", path.display())]
    CaCertificate {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: redis::RedisError,
    },
}

/// A client for `url`, trusting only the CA in `ca_file` when one is given.
/// Nothing is connected yet.
///
/// # Errors
/// [`ClientError`] when the URL is invalid, or the CA file is unreadable, holds
/// no certificate, or is given with a URL that is not `rediss://`.
pub fn client(url: &str, ca_file: Option<&Path>) -> Result<Client, ClientError> {
    let Some(path) = ca_file else {
        return Client::open(url).map_err(ClientError::Url);
    };
    if !url.trim_start().starts_with("rediss://") {
        return Err(ClientError::CaWithoutTls(path.to_path_buf()));
    }
    let pem = std::fs::read(path).map_err(|source| ClientError::CaFile {
        path: path.to_path_buf(),
        source,
    })?;
    // The redis crate accepts a file without any certificate as an empty trust
    // store, which would refuse every server with an obscure error later.
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(ClientError::CaCertificate {
            path: path.to_path_buf(),
            source: redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "no PEM certificate",
            )),
        });
    }
    // Parsed first, so that what build_with_tls refuses is the certificate.
    let info = url.into_connection_info().map_err(ClientError::Url)?;
    let certificates = TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    };
    Client::build_with_tls(info, certificates).map_err(|source| ClientError::CaCertificate {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_tls_urls_without_a_ca_build() {
        assert!(client("redis://127.0.0.1:6379/0", None).is_ok());
        assert!(client("rediss://127.0.0.1:6390/0", None).is_ok());
    }

    #[test]
    fn a_ca_file_needs_a_tls_url() {
        let err = client(
            "redis://127.0.0.1:6379/",
            Some(Path::new("/nonexistent/ca.pem")),
        );
        assert!(matches!(err, Err(ClientError::CaWithoutTls(_))), "{err:?}");
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_named() {
        let err = client(
            "rediss://127.0.0.1:6390/",
            Some(Path::new("/nonexistent/ca.pem")),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");

        let empty =
            std::env::temp_dir().join(format!("ordermon-empty-ca-{}.pem", std::process::id()));
        std::fs::write(&empty, "not a certificate\n").unwrap_or_else(|e| panic!("{e}"));
        let err = client("rediss://127.0.0.1:6390/", Some(&empty));
        let _ = std::fs::remove_file(&empty);
        assert!(
            matches!(err, Err(ClientError::CaCertificate { .. })),
            "{err:?}"
        );
    }
}
