//! Integration tests of the framework core, one binary for fast linking.

mod config;
mod db;
mod errors;
mod health;
mod kv;
mod plugins;
mod shutdown;
