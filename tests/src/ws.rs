//! A WebSocket client for the shop's `/ws`, for the end-to-end tests and the load
//! tool (`ws-load`).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// An open socket.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `<base>/ws` (`base` as `http://host:port`) with `Authorization: Bearer
/// <token>` and reads the welcome frame; why not otherwise.
pub async fn connect(base: &str, token: &str) -> Result<Ws, String> {
    let url = format!("{}/ws", base.replacen("http://", "ws://", 1));
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| e.to_string())?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| e.to_string())?;
    request.headers_mut().insert("authorization", bearer);
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| format!("connecting {url}: {e}"))?;
    let welcome = next_json(&mut ws, Duration::from_secs(30)).await?;
    match welcome["type"] == "welcome" {
        true => Ok(ws),
        false => Err(format!("expected a welcome frame, got {welcome}")),
    }
}

/// The next JSON frame within `within` (pings skipped).
pub async fn next_json(ws: &mut Ws, within: Duration) -> Result<Value, String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| format!("no frame within {within:?}"))?
            .ok_or("the socket closed")?
            .map_err(|e| e.to_string())?;
        match message {
            Message::Text(text) => return serde_json::from_str(&text).map_err(|e| e.to_string()),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => return Err(format!("expected a JSON frame, got {other:?}")),
        }
    }
}

/// Sends one JSON frame.
pub async fn send(ws: &mut Ws, frame: &Value) -> Result<(), String> {
    ws.send(Message::text(frame.to_string()))
        .await
        .map_err(|e| e.to_string())
}

/// Reads until the server closes the socket; its close code (`None`: the connection
/// ended without a close frame).
pub async fn close_code(ws: &mut Ws, within: Duration) -> Result<Option<u16>, String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| format!("not closed within {within:?}"))?;
        match next {
            Some(Ok(Message::Close(frame))) => return Ok(frame.map(|f| u16::from(f.code))),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Ok(None),
        }
    }
}
