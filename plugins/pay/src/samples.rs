//! The pay sandbox's published sample keys (`sandbox-keys/`). A development app
//! with `wechat.sandbox` on uses them for every merchant key left unset; everywhere
//! else they are refused, because anyone can read them.

/// The sample merchant API private key.
pub const MERCHANT_KEY_PEM: &str = include_str!("../sandbox-keys/merchant.key.pem");
/// The sample merchant certificate serial.
pub const MERCHANT_SERIAL: &str = "5A4E3C2B1D0F9E8D7C6B5A493827160F5E4D3C2B";
/// The sample APIv3 key (32 bytes).
pub const APIV3_KEY: &str = "sandbox-only-apiv3-key-000000000";
/// The id under which the sandbox publishes platform key A as the WeChat Pay
/// public key.
pub const PUBLIC_KEY_ID: &str = "PUB_KEY_ID_0119000001092026113000000000000001";
/// Platform key pair A's private key: the sandbox signs with it first.
pub const PLATFORM_A_KEY_PEM: &str = include_str!("../sandbox-keys/platform-a.key.pem");
/// Platform key A's self-signed certificate.
pub const PLATFORM_A_CERT_PEM: &str = include_str!("../sandbox-keys/platform-a.cert.pem");
/// Platform key pair B's private key: the sandbox signs with it after a rotation.
pub const PLATFORM_B_KEY_PEM: &str = include_str!("../sandbox-keys/platform-b.key.pem");
/// Platform key B's self-signed certificate.
pub const PLATFORM_B_CERT_PEM: &str = include_str!("../sandbox-keys/platform-b.cert.pem");
/// Platform key A's public half, as WeChat Pay hands out `pub_key.pem`.
pub const PLATFORM_A_PUBLIC_KEY_PEM: &str = include_str!("../sandbox-keys/platform-a.pub.pem");
