//! The pay plugin against its sandbox, through a running app.

// The plugin registers itself only when something links it.
use weapp_pay as _;

mod client;
mod config;
mod notify;
mod support;
