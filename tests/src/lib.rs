//! End-to-end tests of weapp live in `e2e/`: they run the composed example app and
//! plugin crates against PostgreSQL, MariaDB, Redis and SQLite. This library is empty.
