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
}

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

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
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
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let Some(at) = rest[..authority_end].rfind('@') else {
            return self.0.clone();
        };
        match rest[..at].split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***{}", &rest[at..]),
            None => self.0.clone(),
        }
    }
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
}
