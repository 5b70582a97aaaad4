//! The cargo-generate templates: projects generated from them build, pass their own
//! tests and start; their deployment files hold what a production cluster needs.
//!
//! These tests run `cargo generate` (0.23.5; `tests/run.sh` installs it) and `cargo`
//! itself, building into this workspace's target directory so dependencies compile
//! once for all generated projects.

mod app_template;
mod book_run;
mod deployment;
mod generate;
mod image;
mod plugin_template;
