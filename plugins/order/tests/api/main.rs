//! Integration tests of the order plugin against real databases, one binary.

// The pay plugin the order plugin depends on registers itself only when linked.
use weapp_pay as _;

mod support;

mod architecture;
mod backlog;
mod catalog_admin;
mod concurrency;
mod flash_sale;
mod group_commit;
mod idempotency;
mod journey;
mod outbox;
mod payment;
mod validation;
