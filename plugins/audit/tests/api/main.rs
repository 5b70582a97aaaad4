//! Integration tests of the audit plugin against real databases, one binary.

mod chain;
mod retention;
