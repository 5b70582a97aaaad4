//! The example shop as a library, so its tests (and `tests/e2e`) link the same
//! plugins the binary does.

pub mod shop;

// Plugins register themselves at compile time; naming each crate keeps the linker
// from dropping it (and its registration).
use weapp_audit as _;
use weapp_message as _;
use weapp_order as _;
use weapp_pay as _;

/// The shop's defaults, embedded so the binary runs from any directory.
pub const DEFAULTS: &str = include_str!("../config/default.toml");
