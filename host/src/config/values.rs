//! The value grammar every section of routes.toml shares, and what a bad value becomes.
//!
//! Owns the spellings of sizes (`"64MiB"`, `"1000"`; binary units are IEC's, `kB`/`MB`/`GB`
//! are powers of 1000) and durations (`"500ms"`, `"30s"`, `"2m"`, `"1h"`), whole-number
//! counts, the tables of strings `env`, `dirs` and `data` are written as, where a value
//! stands in the file ([`Location`]), and [`ConfigError`], which names that place, the key
//! and the fix. A [`Checker`] ties them to one file's text; each section's file adds its own
//! checks to it. It does not know any section's keys, defaults or bounds (those are
//! `server.rs`'s, `route.rs`'s, …), so every section imports from here and this file from
//! none of them: one grammar, one error format, no import circle.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

/// The longest duration any key may name (a route's `timeout`, the server's
/// `shutdown-timeout`, …).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// A place in routes.toml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// A routes.toml that cannot be served, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read routes file: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or has an unknown key or a value of the wrong type.
    #[error("{at}: {message}")]
    Syntax {
        /// Where.
        at: Location,
        /// What the parser said.
        message: String,
    },
    /// A key has a value that is well-typed but not acceptable.
    #[error("{at}: `{key}`: {message}")]
    Invalid {
        /// Where.
        at: Location,
        /// Which key, e.g. `route.path`.
        key: String,
        /// Why, and how to fix it.
        message: String,
    },
}

/// Turns spans into [`Location`]s and reports bad values, for one file.
pub(super) struct Checker<'a> {
    /// The file, as errors name it.
    pub(super) file: &'a Path,
    /// Its text, which spans index.
    pub(super) text: &'a str,
}

impl Checker<'_> {
    pub(super) fn at(&self, span: Range<usize>) -> Location {
        location(self.file, self.text, span.start)
    }

    pub(super) fn duration(
        &self,
        value: &Option<Spanned<String>>,
        key: String,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(t) = value else { return Ok(default) };
        parse_duration(t.get_ref())
            .filter(|d| !d.is_zero() && *d <= MAX_TIMEOUT)
            .ok_or_else(|| {
                invalid(
                    self.at(t.span()),
                    key,
                    format!("{:?} is not a duration between 1ms and 24h; write e.g. \"30s\", \"500ms\" or \"2m\"", t.get_ref()),
                )
            })
    }

    pub(super) fn count(
        &self,
        value: &Option<Spanned<i64>>,
        key: String,
        default: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        let Some(n) = value else { return Ok(default) };
        u64::try_from(*n.get_ref())
            .ok()
            .filter(|v| (1..=max).contains(v))
            .ok_or_else(|| {
                invalid(
                    self.at(n.span()),
                    key,
                    format!("must be a whole number from 1 to {max}"),
                )
            })
    }

    pub(super) fn size(
        &self,
        value: &Option<Spanned<String>>,
        key: String,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Option<u64>, ConfigError> {
        let Some(size) = value else { return Ok(None) };
        parse_size(size.get_ref())
            .filter(|n| range.contains(n))
            .map(Some)
            .ok_or_else(|| {
                invalid(
                    self.at(size.span()),
                    key,
                    format!(
                        "{:?} is not a size from {} to {}; write e.g. \"64MiB\", \"512KiB\" or \"1000000\" (bytes)",
                        size.get_ref(),
                        show_size(*range.start()),
                        show_size(*range.end())
                    ),
                )
            })
    }

    /// A `(name, value)` table of strings, each pair checked by `check`.
    pub(super) fn pairs(
        &self,
        table: Option<Spanned<BTreeMap<String, String>>>,
        key: &str,
        check: impl Fn(&str, &str) -> Result<(), String>,
    ) -> Result<Vec<(String, String)>, ConfigError> {
        let Some(table) = table else {
            return Ok(Vec::new());
        };
        let at = self.at(table.span());
        let mut pairs = Vec::new();
        for (k, v) in table.into_inner() {
            check(&k, &v).map_err(|message| invalid(at.clone(), key.to_string(), message))?;
            pairs.push((k, v));
        }
        Ok(pairs)
    }
}

pub(super) fn invalid(at: Location, key: String, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        at,
        key,
        message: message.into(),
    }
}

fn location(file: &Path, text: &str, offset: usize) -> Location {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Location {
        file: file.to_path_buf(),
        line,
        column,
    }
}

/// Bytes in the largest binary unit that divides them.
pub fn show_size(n: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    format!("{n}B")
}

/// `"10MiB"`, `"512KiB"`, `"2GiB"`, `"1000"` (bytes; `kB`/`MB`/`GB` are powers of 1000) → bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "kB" | "KB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// `"30s"`, `"500ms"`, `"2m"`, `"1h"` → a duration.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    match unit.trim() {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10MiB"), Some(10 << 20));
        assert_eq!(parse_size("512 KiB"), Some(512 << 10));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("2GB"), Some(2_000_000_000));
        for bad in [
            "",
            "MiB",
            "1.5MiB",
            "-1",
            "10 parsecs",
            "99999999999999999999GiB",
        ] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        for bad in ["", "s", "10", "1.5s", "-1s", "10x"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
