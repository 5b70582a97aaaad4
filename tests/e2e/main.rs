//! End-to-end tests: plugin crates and the example app binary.

// Referenced only like this, as an app references its plugins: the linker would
// otherwise drop the crate and its registration.
use example_app as _;
use weapp_audit as _;
use weapp_message as _;
use weapp_order as _;
use weapp_pay as _;
use weapp_probe_plugin as _;

mod audit;
mod cluster;
mod journey;
mod openapi;
mod privacy;
mod push;
mod registration;
mod replicas;
mod sdk;
mod support;
