//! The real-time relay (`/ws`) against a served app, with a real WebSocket client.

mod access;
mod delivery;
mod limits;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use weapp::AppContext;
use weapp::actix_web::web;
use weapp::realtime::{ListenOnly, OpenRooms, OwnRoom, Relay};
use weapp::testing::{TestApp, TestAppBuilder};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The rooms the tests use: `live:` open, `support:` own, `news` listen-only.
struct RoomsPlugin;

#[weapp::async_trait::async_trait]
impl weapp::Plugin for RoomsPlugin {
    fn name(&self) -> &'static str {
        "test-rooms"
    }

    fn dependencies(&self) -> &'static [&'static str] {
        &["realtime"]
    }

    fn routes(&self, _cfg: &mut web::ServiceConfig) {}

    async fn on_start(&self, ctx: &AppContext) -> weapp::Result<()> {
        let relay = ctx
            .get::<Relay>()
            .expect("the realtime plugin started first");
        relay.allow("live:", OpenRooms);
        relay.allow("support:", OwnRoom);
        relay.allow("news", ListenOnly);
        Ok(())
    }
}

/// A test app with the test rooms.
fn app() -> TestAppBuilder {
    TestApp::builder().plugin(&RoomsPlugin)
}

fn ws_url(app: &TestApp) -> String {
    format!("{}/ws", app.address.replacen("http://", "ws://", 1))
}

/// Opens `/ws` with extra headers; the refusal's status and JSON body otherwise.
async fn try_connect(
    app: &TestApp,
    headers: &[(&str, &str)],
) -> Result<(Ws, Option<String>), (u16, Value)> {
    let mut request = ws_url(app).into_client_request().expect("valid URL");
    for (name, value) in headers {
        request.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, response)) => {
            let protocol = response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            Ok((ws, protocol))
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_ref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            Err((status, body))
        }
        Err(e) => panic!("connecting /ws failed: {e}"),
    }
}

/// Opens `/ws` expecting a refusal: its status and `code`.
async fn refusal(app: &TestApp, headers: &[(&str, &str)]) -> (u16, String) {
    match try_connect(app, headers).await {
        Ok(_) => panic!("/ws accepted the upgrade"),
        Err((status, body)) => (status, body["code"].as_str().unwrap_or_default().to_owned()),
    }
}

/// Opens `/ws` with `Authorization: Bearer <token>` and reads the welcome frame.
async fn connect(app: &TestApp, token: &str) -> Ws {
    let bearer = format!("Bearer {token}");
    let (mut ws, _) = try_connect(app, &[("authorization", &bearer)])
        .await
        .unwrap_or_else(|(status, body)| panic!("/ws refused: {status} {body}"));
    let welcome = next_json(&mut ws).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    ws
}

/// The next JSON frame (pings skipped); panics after 10 s or on a close.
async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("the socket is open")
            .expect("a readable frame");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON frame"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a JSON frame, got {other:?}"),
        }
    }
}

/// Sends one JSON frame.
async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string()))
        .await
        .expect("frame sent");
}

/// Sends a request frame and returns the server's answer to it.
async fn request(ws: &mut Ws, frame: Value) -> Value {
    send(ws, frame).await;
    next_json(ws).await
}

/// Joins `room`, asserting the ack.
async fn join(ws: &mut Ws, room: &str) {
    let answer = request(ws, json!({"type": "join", "room": room, "id": room})).await;
    assert_eq!(answer, json!({"type": "ack", "id": room}));
}

/// Reads until the server closes; its close code (`None`: closed without a
/// close frame). Frames before it are skipped.
async fn close_code(ws: &mut Ws, within: Duration) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("the server closes the socket in time");
        match next {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                eprintln!("socket error before a close frame: {e}");
                return None;
            }
            None => return None,
        }
    }
}

/// `/api/auth/login` for a new sandbox user: `(access, refresh, user_id)`.
async fn login_with_refresh(app: &TestApp, openid: &str) -> (String, String, i64) {
    let (code, _, _) = app.sandbox_login(Some(openid)).await;
    let body: Value = app
        .client
        .post(app.url("/api/auth/login"))
        .json(&json!({ "code": code }))
        .send()
        .await
        .expect("app reachable")
        .json()
        .await
        .expect("login answer");
    let text = |name: &str| body[name].as_str().expect(name).to_owned();
    (
        text("access_token"),
        text("refresh_token"),
        body["user_id"].as_i64().expect("user_id"),
    )
}

/// POSTs with the bearer token; the status.
async fn post_authorized(app: &TestApp, path: &str, token: &str) -> u16 {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("app reachable")
        .status()
        .as_u16()
}
