//! WeChat client round trips against the embedded sandbox:
//! `cargo bench -p weapp --bench wechat`.

use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use weapp::testing::TestApp;
use weapp::wechat::WechatContext;

fn code2session(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = rt.block_on(TestApp::builder().set("observe.log_level", "warn").spawn());
    let client = app.ctx.wechat().unwrap();
    c.bench_function("code2session round trip to the embedded sandbox", |b| {
        b.iter_custom(|iters| {
            // Codes are single use: make them first, time only the exchange.
            let codes: Vec<String> = rt.block_on(async {
                let mut codes = Vec::new();
                for _ in 0..iters {
                    codes.push(app.sandbox_login(None).await.0);
                }
                codes
            });
            let started = Instant::now();
            rt.block_on(async {
                for code in &codes {
                    client.code2session(code).await.unwrap();
                }
            });
            started.elapsed()
        })
    });
    c.bench_function("access_token from the warm cache", |b| {
        b.iter(|| rt.block_on(client.access_token()).unwrap())
    });
}

criterion_group!(benches, code2session);
criterion_main!(benches);
