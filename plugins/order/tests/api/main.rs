//! Integration tests of the order plugin against real databases, one binary.

mod support;

mod architecture;
mod catalog_admin;
mod concurrency;
mod group_commit;
mod idempotency;
mod journey;
mod outbox;
mod payment;
mod validation;
