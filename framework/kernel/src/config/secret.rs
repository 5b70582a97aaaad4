//! Values that must never be printed: secrets and connection URLs with passwords.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroize;

/// A secret string (app secret, JWT key, SM4 key...). `Debug`, `Display` and
/// `Serialize` all print `***` (`Serialize` prints `""` when unset); the memory is zeroed when dropped. Read it with
/// [`Secret::expose`], only where the value is actually used.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself. Never log what this returns.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether no value was configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `given` is this secret, compared in constant time (over SHA-256
    /// digests, so not even the length leaks). An unset secret matches nothing.
    pub fn matches(&self, given: &str) -> bool {
        use sha2::{Digest, Sha256};
        if self.0.is_empty() {
            return false;
        }
        let (a, b) = (
            Sha256::digest(self.0.as_bytes()),
            Sha256::digest(given.as_bytes()),
        );
        a.iter()
            .zip(b.iter())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
    }

    /// Whether the value is one of the samples shipped in weapp's examples, templates
    /// and docs ([`SAMPLE_SECRETS`]): published, so no secret at all.
    pub fn is_sample(&self) -> bool {
        SAMPLE_SECRETS.contains(&self.0.trim())
    }

    /// Outside development: why this required secret is not acceptable (unset, or a
    /// published sample), if it is not.
    pub fn production_issue(&self) -> Option<&'static str> {
        if self.is_empty() {
            Some("required outside development (WEAPP_ENV other than development or test)")
        } else if self.is_sample() {
            Some("is a published sample value; set a real secret")
        } else {
            None
        }
    }
}

/// Writes a file only its owner can read (mode 0600 on Unix): generated development
/// keys are secrets too.
pub fn write_secret_file(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // An existing file keeps its mode on open: narrow it too.
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(contents)
}

/// Secret values that appear in weapp's example app, templates, tests and book.
/// Anyone can read them, so outside development they are refused by value.
pub const SAMPLE_SECRETS: &[&str] = &[
    "sandbox-only-secret",
    "sandbox-only-payment-secret",
    "sandbox-test-secret",
    "sandbox-payment-secret",
    "sandbox-only-apiv3-key-000000000",
    "change-me",
    "changeme",
    "secret",
];

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

// An unset secret serializes as "" (not "***"): config check then shows it is
// missing, and built-in defaults, which figment reads through Serialize, stay empty.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if self.0.is_empty() { "" } else { "***" })
    }
}

/// A secret read from `WEAPP__…=123456` arrives as a number (variables are parsed
/// like TOML values), and WeChat's own sample push token is digits: any scalar is
/// taken as its text.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = String;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
                Ok(v.to_owned())
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<String, E> {
                Ok(v)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<String, E> {
                Ok(v.to_string())
            }
        }
        deserializer.deserialize_any(Text).map(Secret)
    }
}

/// A connection URL whose password is redacted wherever it is printed
/// (`postgres://app:***@db:5432/shop`), while the rest stays visible for operators.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionUrl(String);

impl ConnectionUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        ConnectionUrl(url.into())
    }

    /// The full URL, password included. Never log what this returns.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The scheme, lower-cased (`postgres`, `mysql`, `sqlite`, `redis`...).
    pub fn scheme(&self) -> Option<String> {
        self.0
            .split_once(':')
            .map(|(scheme, _)| scheme.to_ascii_lowercase())
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        let Some((scheme, rest)) = self.0.split_once("://") else {
            return self.0.clone();
        };
        let (before_query, query) = match rest.split_once('?') {
            Some((before, query)) => (before, Some(query)),
            None => (rest, None),
        };
        let mut out = format!("{scheme}://");
        // The last `@` before the query ends the user info, so a password holding
        // `/` or `@` is still found whole.
        match before_query.rfind('@') {
            Some(at) => {
                match before_query[..at].split_once(':') {
                    Some((user, _password)) => {
                        out.push_str(user);
                        out.push_str(":***");
                    }
                    None => out.push_str(&before_query[..at]),
                }
                out.push_str(&before_query[at..]);
            }
            None => out.push_str(before_query),
        }
        if let Some(query) = query {
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((name, _)) if is_secret_param(name) => format!("{name}=***"),
                    _ => param.to_owned(),
                })
                .collect();
            out.push('?');
            out.push_str(&params.join("&"));
        }
        out
    }
}

/// Query parameters of connection URLs that carry a secret (`?password=…`).
fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "password",
        "pass",
        "pwd",
        "secret",
        "token",
        "sslpassword",
        "key",
    ]
    .iter()
    .any(|secret| name == *secret || name.ends_with(&format!("_{secret}")))
}

impl Drop for ConnectionUrl {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for ConnectionUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for ConnectionUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for ConnectionUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for ConnectionUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(ConnectionUrl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints_its_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"***\"");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn url_password_is_redacted() {
        let url = ConnectionUrl::new("postgres://app:p%40ss@db:5432/shop");
        assert_eq!(url.to_string(), "postgres://app:***@db:5432/shop");
        assert_eq!(format!("{url:?}"), "\"postgres://app:***@db:5432/shop\"");
        let no_password = ConnectionUrl::new("mysql://root@127.0.0.1/test");
        assert_eq!(no_password.to_string(), "mysql://root@127.0.0.1/test");
        assert_eq!(
            ConnectionUrl::new("redis://:secret@cache/0").to_string(),
            "redis://:***@cache/0"
        );
        assert_eq!(
            ConnectionUrl::new("sqlite://data/x.db").scheme().as_deref(),
            Some("sqlite")
        );
    }

    #[test]
    fn passwords_with_slashes_and_in_the_query_are_redacted_too() {
        assert_eq!(
            ConnectionUrl::new("postgres://app:pa/ss@word@db:5432/shop").to_string(),
            "postgres://app:***@db:5432/shop"
        );
        assert_eq!(
            ConnectionUrl::new("postgres://db:5432/shop?user=app&password=hunter2&sslmode=require")
                .to_string(),
            "postgres://db:5432/shop?user=app&password=***&sslmode=require"
        );
        assert_eq!(
            ConnectionUrl::new("mysql://db/shop?ssl_key=k&PASSWORD=x").to_string(),
            "mysql://db/shop?ssl_key=***&PASSWORD=***"
        );
    }

    #[test]
    fn secrets_compare_in_full_and_unset_matches_nothing() {
        let s = Secret::new("a-token");
        assert!(s.matches("a-token"));
        assert!(!s.matches("a-toke"));
        assert!(!s.matches("a-token "));
        assert!(!Secret::default().matches(""));
    }
}
