//! Why no connection can be had. The pool waits `database.connect_timeout_ms` and
//! then reports only that it timed out; one connection made without the pool shows
//! the cause, said in terms an operator acts on.

use std::time::Duration;

use diesel_async::AsyncConnection;

use super::{AsyncMysqlConnection, AsyncPgConnection, Backend, Db};

impl Db {
    /// Connects once without the pool: `None` if that works, else what stops it —
    /// the database does not exist, the credentials were refused, or the server
    /// does not answer. SQLite has no server and is never diagnosed.
    pub async fn diagnose(&self) -> Option<String> {
        let url = self.config.url.expose();
        let timeout = Duration::from_millis(self.config.connect_timeout_ms);
        // The drivers say "error connecting to server" and drop the cause: reach
        // the port first, so an unreachable server is named as such.
        if let Some(address) = server_address(url, self.backend) {
            let reached =
                tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&address)).await;
            let error = match reached {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!("no answer within {timeout:?}")),
            };
            if let Some(error) = error {
                return Some(format!(
                    "the server is unreachable at that host and port ({}): {error}",
                    self.config.url.redacted()
                ));
            }
        }
        let attempt = async {
            match self.backend {
                Backend::Postgres => AsyncPgConnection::establish(url).await.err(),
                Backend::Mysql => AsyncMysqlConnection::establish(url).await.err(),
                Backend::Sqlite => None,
            }
        };
        let error = match tokio::time::timeout(timeout, attempt).await {
            Ok(None) => return None,
            Ok(Some(e)) => e.to_string(),
            Err(_) => format!("no answer within {timeout:?}"),
        };
        Some(explain(&error, &self.config.url.redacted()))
    }
}

/// `host:port` of a server URL (`postgres://user:pw@host:5432/db`), with the
/// backend's default port; `None` for SQLite or a URL without a host (a socket).
fn server_address(url: &str, backend: Backend) -> Option<String> {
    let port = match backend {
        Backend::Postgres => 5432,
        Backend::Mysql => 3306,
        Backend::Sqlite => return None,
    };
    let rest = url.split_once("://")?.1;
    // The user info ends at the last `@` before the query (a password may hold `/`).
    let before_query = rest.split('?').next()?;
    let after_user = before_query
        .rsplit_once('@')
        .map_or(before_query, |(_, h)| h);
    let host_port = after_user.split('/').next()?;
    if host_port.is_empty() {
        return None;
    }
    // `[::1]:5432`, `db:5432`, `db`.
    let has_port = match host_port.rfind(']') {
        Some(end) => host_port[end..].contains(':'),
        None => host_port.contains(':'),
    };
    Some(if has_port {
        host_port.to_owned()
    } else {
        format!("{host_port}:{port}")
    })
}

/// `error` (a driver's connection error) said as what to fix.
fn explain(error: &str, url: &str) -> String {
    let lower = error.to_ascii_lowercase();
    let cause = if lower.contains("does not exist") && lower.contains("database")
        || lower.contains("unknown database")
    {
        "the database does not exist: create it (e.g. `createdb`, or `CREATE DATABASE`)"
    } else if lower.contains("password authentication failed")
        || lower.contains("access denied")
        || lower.contains("role") && lower.contains("does not exist")
        || lower.contains("no pg_hba.conf entry")
    {
        "the server refused the credentials in the URL"
    } else if lower.contains("connection refused")
        || lower.contains("no answer within")
        || lower.contains("timed out")
        || lower.contains("could not translate host name")
        || lower.contains("name or service not known")
        || lower.contains("unreachable")
    {
        "the server is unreachable at that host and port"
    } else {
        "the connection failed"
    };
    format!("{cause} ({url}): {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_errors_are_named_by_what_to_fix() {
        let url = "postgres://app:***@db:5432/shop";
        assert!(
            explain("database \"shop\" does not exist", url)
                .starts_with("the database does not exist")
        );
        assert!(explain("Unknown database 'shop'", url).starts_with("the database does not exist"));
        assert!(
            explain("password authentication failed for user \"app\"", url)
                .starts_with("the server refused")
        );
        assert!(
            explain("Access denied for user 'root'@'localhost'", url)
                .starts_with("the server refused")
        );
        assert!(
            explain("Connection refused (os error 111)", url)
                .starts_with("the server is unreachable")
        );
        assert!(explain("something else", url).contains(url));
    }

    #[test]
    fn server_addresses_come_with_their_default_ports() {
        let pg = Backend::Postgres;
        assert_eq!(
            server_address("postgres://a:b@db:6000/x", pg).as_deref(),
            Some("db:6000")
        );
        assert_eq!(
            server_address("postgres://a:p/w@db/x", pg).as_deref(),
            Some("db:5432")
        );
        assert_eq!(
            server_address("postgres://[::1]/x", pg).as_deref(),
            Some("[::1]:5432")
        );
        assert_eq!(
            server_address("mysql://root@127.0.0.1/test", Backend::Mysql).as_deref(),
            Some("127.0.0.1:3306")
        );
        assert_eq!(server_address("sqlite://data/x.db", Backend::Sqlite), None);
    }
}
