//! Integration tests of the message plugin against the sandbox, one binary.

mod support;

mod delivery;
mod push;
mod templates;
