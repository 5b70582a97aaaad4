use std::io::{Read, Write};
use std::time::Duration;

use weapp::testing::TestApp;

/// A self-signed certificate for `localhost`, written to a temporary folder.
fn certificate() -> (std::path::PathBuf, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = std::env::temp_dir().join(format!("weapp-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    (dir, cert.cert.pem())
}

fn client(
    cert_pem: &str,
    addr: std::net::SocketAddr,
    version: reqwest::tls::Version,
) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .resolve("localhost", addr)
        .min_tls_version(version)
        .max_tls_version(version)
        .build()
        .unwrap()
}

/// A TLS 1.1 ClientHello: version 3.2, two CBC suites, no extensions.
fn tls11_client_hello() -> Vec<u8> {
    let mut hello = vec![0x03, 0x02];
    hello.extend_from_slice(&[0x42; 32]); // random
    hello.push(0); // session id
    hello.extend_from_slice(&[0x00, 0x04, 0x00, 0x2f, 0xc0, 0x13]); // cipher suites
    hello.extend_from_slice(&[0x01, 0x00]); // null compression
    let mut handshake = vec![0x01, 0, 0, hello.len() as u8];
    handshake.extend_from_slice(&hello);
    let mut record = vec![0x16, 0x03, 0x02, 0, handshake.len() as u8];
    record.extend_from_slice(&handshake);
    record
}

#[tokio::test]
async fn https_accepts_tls_1_3_and_1_2_and_refuses_1_1() {
    let (dir, cert_pem) = certificate();
    let app = TestApp::builder()
        .set("wechat.sandbox", false)
        .set(
            "server.tls.cert_path",
            dir.join("cert.pem").display().to_string(),
        )
        .set(
            "server.tls.key_path",
            dir.join("key.pem").display().to_string(),
        )
        .spawn()
        .await;
    let addr: std::net::SocketAddr = app.address.trim_start_matches("http://").parse().unwrap();
    let url = format!("https://localhost:{}/healthz", addr.port());

    for version in [
        reqwest::tls::Version::TLS_1_3,
        reqwest::tls::Version::TLS_1_2,
    ] {
        let response = client(&cert_pem, addr, version).get(&url).send().await;
        let response = response.unwrap_or_else(|e| panic!("{version:?}: {e}"));
        assert_eq!(response.status(), 200, "{version:?}");
    }
    // Plain HTTP on the TLS port gets nowhere.
    assert!(
        reqwest::get(format!("http://{addr}/healthz"))
            .await
            .map(|r| r.status() != 200)
            .unwrap_or(true)
    );

    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(&tls11_client_hello()).unwrap();
        let mut buf = [0u8; 64];
        let n = stream.read(&mut buf).unwrap_or(0);
        buf[..n].to_vec()
    })
    .await
    .unwrap();
    assert!(
        answer.first() != Some(&0x16),
        "a TLS 1.1-only client must not get a ServerHello, got {answer:02x?}"
    );
    if let Some(&kind) = answer.first() {
        assert_eq!(kind, 0x15, "answered with an alert: {answer:02x?}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_missing_certificate_stops_start_up_with_the_key_named() {
    let app = TestApp::builder()
        .set("wechat.sandbox", false)
        .set("server.tls.cert_path", "/nonexistent/cert.pem")
        .set("server.tls.key_path", "/nonexistent/key.pem");
    crate::refused_at_start(app, "server.tls.cert_path").await;
}

#[tokio::test]
async fn the_embedded_sandbox_and_https_do_not_mix() {
    let (dir, _) = certificate();
    let app = TestApp::builder()
        .set(
            "server.tls.cert_path",
            dir.join("cert.pem").display().to_string(),
        )
        .set(
            "server.tls.key_path",
            dir.join("key.pem").display().to_string(),
        );
    crate::refused_at_start(app, "wechat.sandbox").await;
}
