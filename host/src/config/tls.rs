//! `[server.tls]`: which certificate, key and client CAs the listeners' TLS uses.
//!
//! Owns the table's keys and their check: `cert` and `key` are required (a listener cannot
//! speak TLS without both), `client-ca` is optional, and every path is resolved against the
//! directory of routes.toml, like every other path in the file. The files are named here,
//! not read: `server::tls` reads the PEM (RFC 7468) once before the server listens and says
//! what is wrong with a missing file, a key that does not match the certificate or an
//! unusable CA; it also owns the handshake (TLS 1.2, RFC 5246, and 1.3, RFC 8446), asking
//! for client certificates (RFC 8446 §4.3.2) and choosing h2 or http/1.1 by ALPN (RFC 7301).
//! Nothing here is TLS-specific beyond the names, so `config` stays free of rustls.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::values::{Checker, ConfigError, invalid};

/// TLS settings from routes.toml's `[server.tls]` table (paths already resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM file with the server's certificate first, then any intermediates.
    pub cert: PathBuf,
    /// PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1; not encrypted).
    pub key: PathBuf,
    /// PEM file with the CAs that sign client certificates; when set, every client must
    /// present a certificate that chains to one of them.
    pub client_ca: Option<PathBuf>,
}

/// `[server.tls]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawTls {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
}

impl Checker<'_> {
    /// `[server.tls]`: `cert` and `key` are required; every path is resolved against `base`,
    /// the directory of routes.toml.
    pub(super) fn tls(
        &self,
        tls: Spanned<RawTls>,
        base: &Path,
    ) -> Result<TlsSettings, ConfigError> {
        let at = self.at(tls.span());
        let tls = tls.into_inner();
        let required = |value: Option<String>, key: &str| {
            value
                .filter(|v| !v.trim().is_empty())
                .map(|v| base.join(v))
                .ok_or_else(|| {
                    invalid(
                        at.clone(),
                        format!("server.tls.{key}"),
                        format!("[server.tls] needs `{key}`: a PEM file, relative to this file"),
                    )
                })
        };
        Ok(TlsSettings {
            cert: required(tls.cert, "cert")?,
            key: required(tls.key, "key")?,
            client_ca: tls.client_ca.map(|ca| base.join(ca)),
        })
    }
}
