//! {{project-name}} as a library, so its tests link the same plugins the binary does.

pub mod feedback;

// Plugins register themselves at compile time; naming each crate keeps the linker
// from dropping it (and its registration).
{%- if with_audit %}
use weapp_audit as _;
{%- endif %}
{%- if with_message %}
use weapp_message as _;
{%- endif %}
{%- if with_order %}
use weapp_order as _;
use weapp_pay as _;
{%- endif %}

/// The defaults in `config/default.toml`, compiled in so the binary runs from any
/// directory; `config/{WEAPP_ENV}.toml` and `WEAPP__*` variables override them.
pub const DEFAULTS: &str = include_str!("../config/default.toml");
