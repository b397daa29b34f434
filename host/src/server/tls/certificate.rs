//! What a finished handshake settled, as plain facts for the environ ([`TlsInfo`]): the
//! protocol and cipher suite in mod_ssl's spelling, SNI, ALPN, and the verified client
//! certificate's subject (cheroot's `CN=..,O=..` form, each value escaped as RFC 4514 §2.4
//! says, so that no value can pose as another attribute) and PEM.

use std::fmt::Write as _;

use anyhow::anyhow;
use rustls::{ProtocolVersion, ServerConnection};
use x509_parser::objects::{oid_registry, oid2abbrev};

use crate::http::environ::{ClientCert, TlsInfo};

/// What the handshake of `conn` settled.
pub(super) fn facts(conn: &ServerConnection) -> anyhow::Result<TlsInfo> {
    let protocol = match conn.protocol_version() {
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    };
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|suite| {
            let suite = suite.suite();
            // IANA's (and OpenSSL's, mod_ssl's) spelling: TLS_AES_256_GCM_SHA384.
            suite.as_str().map_or_else(
                || format!("{suite:?}"),
                |name| name.replacen("TLS13_", "TLS_", 1),
            )
        })
        .unwrap_or_default();
    // The verifier has already checked the chain; only the leaf goes into the environ.
    let client = match conn.peer_certificates().and_then(|chain| chain.first()) {
        None => None,
        Some(leaf) => Some(ClientCert {
            subject_dn: subject_dn(leaf)?,
            pem: pem_encode(leaf),
        }),
    };
    Ok(TlsInfo {
        protocol,
        cipher,
        sni: conn.server_name().map(str::to_ascii_lowercase),
        h2: conn.alpn_protocol() == Some(b"h2"),
        client,
    })
}

/// The subject in cheroot's spelling (see [`ClientCert::subject_dn`]): RDNs in certificate
/// order joined by `,`, the attributes of a multi-valued RDN by `+` (RFC 4514 §2.2), every
/// value escaped ([`escape_value`]).
fn subject_dn(der: &[u8]) -> anyhow::Result<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| anyhow!("the client certificate was verified but cannot be parsed: {e}"))?;
    let mut rdns = Vec::new();
    for rdn in cert.subject().iter_rdn() {
        let mut parts = Vec::new();
        for attr in rdn.iter() {
            let name = oid2abbrev(attr.attr_type(), oid_registry())
                .map_or_else(|_| attr.attr_type().to_id_string(), str::to_owned);
            // Printable, UTF-8 and IA5 strings cover nearly every certificate; the legacy
            // string types (T61, BMP) are shown as well as UTF-8 allows.
            let value = attr.as_str().map_or_else(
                |_| String::from_utf8_lossy(attr.as_slice()).into_owned(),
                str::to_owned,
            );
            parts.push(format!("{name}={}", escape_value(&value)));
        }
        rdns.push(parts.join("+"));
    }
    Ok(rdns.join(","))
}

/// An attribute value as RFC 4514 §2.4 writes it, so that a certificate's CN of
/// `alice,O=Admin` cannot read as a second attribute: `"` `+` `,` `;` `<` `>` `\` (and `=`,
/// which §3 allows escaping) get a backslash, as do a leading space or `#` and a trailing
/// space; NUL and other control characters become `\XX` hex pairs of their UTF-8 bytes.
fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for (i, c) in value.char_indices() {
        let first = i == 0;
        let last = i + c.len_utf8() == value.len();
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if first => out.push_str("\\#"),
            ' ' if first || last => out.push_str("\\ "),
            c if c.is_control() => {
                for b in c.encode_utf8(&mut [0; 4]).bytes() {
                    let _ = write!(out, "\\{b:02X}");
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// A DER certificate as PEM (RFC 7468), as Python's `ssl.DER_cert_to_PEM_cert(..).strip()`.
fn pem_encode(der: &[u8]) -> String {
    let b64 = base64(der);
    let mut pem = String::with_capacity(b64.len() + b64.len() / 64 + 60);
    pem.push_str("-----BEGIN CERTIFICATE-----\n");
    for (i, c) in b64.chars().enumerate() {
        if i > 0 && i % 64 == 0 {
            pem.push('\n');
        }
        pem.push(c);
    }
    pem.push_str("\n-----END CERTIFICATE-----");
    pem
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, want) in cases {
            assert_eq!(base64(input.as_bytes()), want, "{input:?}");
        }
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn values_are_escaped_as_rfc_4514_says() {
        let cases = [
            ("alice", "alice"),
            ("alice,O=Admin", "alice\\,O\\=Admin"),
            ("a+b", "a\\+b"),
            ("\"q\" <x>; \\", "\\\"q\\\" \\<x\\>\\; \\\\"),
            ("#1", "\\#1"),
            ("a#1", "a#1"),
            (" lead", "\\ lead"),
            ("trail ", "trail\\ "),
            (" ", "\\ "),
            ("in side", "in side"),
            ("nul\0x", "nul\\00x"),
            ("new\nline", "new\\0Aline"),
            ("caf\u{e9}", "caf\u{e9}"),
            ("", ""),
        ];
        for (value, want) in cases {
            assert_eq!(escape_value(value), want, "{value:?}");
        }
    }

    #[test]
    fn a_subject_cannot_forge_an_attribute() {
        use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
        let subject = |dn: &[(DnType, &str)]| {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.distinguished_name = DistinguishedName::new();
            for (ty, value) in dn {
                params.distinguished_name.push(ty.clone(), *value);
            }
            let cert = params.self_signed(&KeyPair::generate().unwrap()).unwrap();
            subject_dn(cert.der()).unwrap()
        };
        assert_eq!(
            subject(&[
                (DnType::OrganizationName, "Example"),
                (DnType::CommonName, "alice,O=Admin"),
            ]),
            "O=Example,CN=alice\\,O\\=Admin"
        );
        assert_eq!(
            subject(&[(DnType::CommonName, "bob+OU=ops")]),
            "CN=bob\\+OU\\=ops"
        );
        assert_eq!(
            subject(&[
                (DnType::CountryName, "US"),
                (DnType::OrganizationName, "Example"),
                (DnType::CommonName, "alice"),
            ]),
            "C=US,O=Example,CN=alice",
            "plain values are as before"
        );
    }
}
