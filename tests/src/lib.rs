//! End-to-end tests of weapp live in `e2e/`: they run the composed example app and
//! plugin crates against PostgreSQL, MariaDB, Redis and SQLite, in process
//! ([`weapp::testing::TestApp`]) or as several processes of `src/bin/shop_node.rs`
//! (`e2e/cluster`). This library holds what the tests and the load tools share.

pub mod ws;
