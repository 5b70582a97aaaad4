//! The weapp guide's chapters as doc comments: `cargo test --doc -p weapp-book`
//! compiles (and, unless marked `no_run`, runs) every Rust block in the book, so
//! its code cannot drift from the framework. `tests/reference.rs` checks the
//! reference tables against the code, and `tests/book.rs` that every chapter is
//! included here and that `mdbook build` succeeds without warnings.

#[doc = include_str!("../src/introduction.md")]
pub mod introduction {}

#[doc = include_str!("../src/quick-start.md")]
pub mod quick_start {}

#[doc = include_str!("../src/tutorial/shop.md")]
pub mod tutorial_shop {}

#[doc = include_str!("../src/concepts/app-and-plugins.md")]
pub mod concepts_app_and_plugins {}

#[doc = include_str!("../src/concepts/config.md")]
pub mod concepts_config {}

#[doc = include_str!("../src/concepts/databases.md")]
pub mod concepts_databases {}

#[doc = include_str!("../src/concepts/auth.md")]
pub mod concepts_auth {}

#[doc = include_str!("../src/concepts/wechat.md")]
pub mod concepts_wechat {}

#[doc = include_str!("../src/concepts/field-encryption.md")]
pub mod concepts_field_encryption {}

#[doc = include_str!("../src/concepts/observability.md")]
pub mod concepts_observability {}

#[doc = include_str!("../src/guides/mini-program-login.md")]
pub mod guides_mini_program_login {}

#[doc = include_str!("../src/guides/phone-number.md")]
pub mod guides_phone_number {}

#[doc = include_str!("../src/guides/stale-session-key.md")]
pub mod guides_stale_session_key {}

#[doc = include_str!("../src/guides/payments.md")]
pub mod guides_payments {}
#[doc = include_str!("../src/guides/flash-sales.md")]
pub mod guides_flash_sales {}

#[doc = include_str!("../src/guides/writing-a-plugin.md")]
pub mod guides_writing_a_plugin {}

#[doc = include_str!("../src/guides/kubernetes.md")]
pub mod guides_kubernetes {}

#[doc = include_str!("../src/guides/scaling-out.md")]
pub mod guides_scaling_out {}

#[doc = include_str!("../src/guides/real-time.md")]
pub mod guides_real_time {}

#[doc = include_str!("../src/guides/production.md")]
pub mod guides_production {}

#[doc = include_str!("../src/guides/migrating-from-gin.md")]
pub mod guides_migrating_from_gin {}

#[doc = include_str!("../src/guides/upgrading.md")]
pub mod guides_upgrading {}

#[doc = include_str!("../src/reference/config.md")]
pub mod reference_config {}

#[doc = include_str!("../src/reference/errors.md")]
pub mod reference_errors {}

#[doc = include_str!("../src/reference/metrics.md")]
pub mod reference_metrics {}

#[doc = include_str!("../src/reference/cli.md")]
pub mod reference_cli {}

#[doc = include_str!("../src/changelog.md")]
pub mod changelog {}
