//! Building the app's WeChat services from `[wechat]`.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::web;

use super::{PushCrypto, WechatClient};
use crate::AppContext;
use crate::config::{Config, ConfigError};
use crate::kv::KvStore;

/// The sandbox mounted on the app's own server, if enabled.
#[cfg(feature = "sandbox")]
pub type EmbeddedSandbox = super::sandbox::Sandbox;
/// The sandbox mounted on the app's own server (none without the `sandbox` feature).
#[cfg(not(feature = "sandbox"))]
pub type EmbeddedSandbox = std::convert::Infallible;

/// The WeChat client, push crypto and embedded sandbox of one app.
pub struct WechatServices {
    client: Option<WechatClient>,
    push: Option<PushCrypto>,
    /// Mounted by the server when `wechat.sandbox` is on.
    pub sandbox: Option<EmbeddedSandbox>,
}

fn config_error(key: &str, reason: &str) -> crate::Error {
    ConfigError::Invalid(vec![crate::config::ConfigIssue {
        key: key.into(),
        reason: reason.into(),
    }])
    .into()
}

impl WechatServices {
    /// With `wechat.sandbox`, the client calls the sandbox on this app's own address.
    pub fn build(config: &Config, addr: SocketAddr, kv: Arc<dyn KvStore>) -> crate::Result<Self> {
        let wechat = config.get::<super::WechatConfig>()?;
        let (sandbox, base_url) = if wechat.sandbox {
            // Validation refuses this already; the check stays beside the mount so
            // no path around the validation can serve the sandbox in production.
            if !config.is_development() {
                return Err(config_error(
                    "wechat.sandbox",
                    "must be off outside development",
                ));
            }
            if config.server.tls.is_some() {
                return Err(config_error(
                    "wechat.sandbox",
                    "cannot be embedded in an HTTPS server; run `sandbox` standalone and set wechat.base_url",
                ));
            }
            #[cfg(feature = "sandbox")]
            {
                let sandbox = super::sandbox::Sandbox::new(
                    &wechat.appid,
                    wechat.secret.expose(),
                    wechat.sandbox_settings.risky_words.clone(),
                );
                let host = if addr.ip().is_unspecified() {
                    "127.0.0.1".to_owned()
                } else {
                    addr.ip().to_string()
                };
                (Some(sandbox), format!("http://{host}:{}", addr.port()))
            }
            #[cfg(not(feature = "sandbox"))]
            return Err(config_error(
                "wechat.sandbox",
                "this build has no `sandbox` feature",
            ));
        } else {
            (None, wechat.api_base_url().to_owned())
        };
        let client = if wechat.appid.is_empty() {
            None
        } else {
            Some(
                WechatClient::new(&wechat, &base_url, kv)
                    .map_err(|e| crate::Error::internal(format!("WeChat client: {e}")))?,
            )
        };
        if let Some(client) = &client {
            tracing::info!(base_url = client.base_url(), "WeChat client ready");
        }
        Ok(WechatServices {
            client,
            push: wechat.push_crypto(),
            sandbox,
        })
    }

    /// Stores the client and push crypto in the context.
    pub fn install(&self, ctx: &AppContext) {
        if let Some(client) = &self.client {
            ctx.insert(client.clone());
        }
        if let Some(push) = &self.push {
            ctx.insert(push.clone());
        }
        #[cfg(feature = "sandbox")]
        if let Some(sandbox) = &self.sandbox {
            ctx.insert(sandbox.clone());
        }
    }
}

/// Mounts the embedded sandbox's routes, if any.
pub fn mount_sandbox(cfg: &mut web::ServiceConfig, sandbox: Option<&EmbeddedSandbox>) {
    #[cfg(feature = "sandbox")]
    if let Some(sandbox) = sandbox {
        sandbox.configure(cfg);
    }
    #[cfg(not(feature = "sandbox"))]
    let _ = (cfg, sandbox);
}
