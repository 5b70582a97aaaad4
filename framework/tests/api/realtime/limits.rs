//! Each limit of `[realtime]`, and what a client sees when it hits it.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::{app, close_code, connect, join, next_json, refusal, request, send, try_connect};

#[tokio::test]
async fn connections_are_limited_per_user_and_per_instance() {
    let app = app()
        .set("realtime.max_connections_per_user", 2)
        .set("realtime.max_connections", 3)
        .spawn()
        .await;
    let (token, _) = app.login("ws-many").await;
    let bearer = format!("Bearer {token}");
    let mut first = connect(&app, &token).await;
    let _second = connect(&app, &token).await;
    let refused = refusal(&app, &[("authorization", &bearer)]).await;
    assert_eq!(refused, (429, "too_many_connections".to_owned()));

    // A closed socket frees its place.
    first.close(None).await.unwrap();
    let mut reopened = None;
    for _ in 0..50 {
        if let Ok((ws, _)) = try_connect(&app, &[("authorization", &bearer)]).await {
            reopened = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        reopened.is_some(),
        "the user may connect again after closing one"
    );

    let (other, _) = app.login("ws-many-other").await;
    let _third = connect(&app, &other).await;
    let bearer = format!("Bearer {other}");
    let refused = refusal(&app, &[("authorization", &bearer)]).await;
    assert_eq!(refused, (503, "relay_full".to_owned()));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_message_over_the_size_limit_closes_the_socket_with_1009() {
    let app = app().set("realtime.max_message_bytes", 256).spawn().await;
    let (token, _) = app.login("ws-big").await;
    let mut ws = connect(&app, &token).await;
    let fits = json!({"type": "ping", "id": "x".repeat(200)});
    assert_eq!(request(&mut ws, fits).await["type"], "pong");
    send(&mut ws, json!({"type": "ping", "id": "x".repeat(1000)})).await;
    assert_eq!(
        close_code(&mut ws, Duration::from_secs(5)).await,
        Some(1009)
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn messages_over_the_rate_are_refused_one_by_one_and_the_socket_lives_on() {
    let app = app().set("realtime.messages_per_second", 3).spawn().await;
    let (token, _) = app.login("ws-chatty").await;
    let mut ws = connect(&app, &token).await;
    for i in 0..10 {
        send(
            &mut ws,
            json!({"type": "join", "room": "live:rate", "id": i}),
        )
        .await;
    }
    let mut acks = 0;
    let mut limited = 0;
    for _ in 0..10 {
        let answer = next_json(&mut ws).await;
        match answer["type"].as_str() {
            Some("ack") => acks += 1,
            Some("error") if answer["code"] == "rate_limited" => limited += 1,
            _ => panic!("unexpected {answer}"),
        }
    }
    assert!(
        (3..=4).contains(&acks),
        "the burst is the rate: {acks} acks"
    );
    assert_eq!(acks + limited, 10);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let ack = request(
        &mut ws,
        json!({"type": "leave", "room": "live:rate", "id": "later"}),
    )
    .await;
    assert_eq!(
        ack,
        json!({"type": "ack", "id": "later"}),
        "the budget refills"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn rooms_per_socket_are_limited_and_each_room_follows_its_policy() {
    let app = app()
        .set("realtime.max_rooms_per_connection", 2)
        .spawn()
        .await;
    let (token, user_id) = app.login("ws-rooms").await;
    let mut ws = connect(&app, &token).await;

    let code_of = |answer: serde_json::Value| answer["code"].as_str().unwrap_or("").to_owned();
    join(&mut ws, &format!("support:{user_id}")).await;
    let other = request(
        &mut ws,
        json!({"type": "join", "room": format!("support:{}", user_id + 1)}),
    )
    .await;
    assert_eq!(
        code_of(other),
        "forbidden",
        "another buyer's support thread"
    );
    let unknown = request(&mut ws, json!({"type": "join", "room": "secret:1"})).await;
    assert_eq!(code_of(unknown), "forbidden", "no policy, no room");
    let invalid = request(&mut ws, json!({"type": "join", "room": "a b"})).await;
    assert_eq!(code_of(invalid), "invalid_room");
    join(&mut ws, "news").await;
    let third = request(&mut ws, json!({"type": "join", "room": "live:3"})).await;
    assert_eq!(code_of(third), "too_many_rooms");

    let listen_only = request(
        &mut ws,
        json!({"type": "publish", "room": "news", "data": 1}),
    )
    .await;
    assert_eq!(
        code_of(listen_only),
        "forbidden",
        "only the server speaks in news"
    );
    let not_in = request(
        &mut ws,
        json!({"type": "publish", "room": "live:9", "data": 1}),
    )
    .await;
    assert_eq!(code_of(not_in), "not_joined");
    let garbage = request(&mut ws, json!({"type": "shout"})).await;
    assert_eq!(code_of(garbage), "invalid_frame");
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(code_of(next_json(&mut ws).await), "binary_not_supported");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_that_answers_nothing_idles_out_and_one_that_pongs_stays() {
    let app = app()
        .set("realtime.heartbeat_interval_ms", 100)
        .set("realtime.idle_timeout_ms", 400)
        .spawn()
        .await;
    let (token, _) = app.login("ws-idle").await;
    let mut silent = connect(&app, &token).await;
    let mut alive = connect(&app, &token).await;

    // Reading answers the server's pings (the client library pongs by itself).
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1200);
    let mut pings = 0;
    while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, alive.next()).await {
        assert!(matches!(message, Message::Ping(_)), "{message:?}");
        pings += 1;
    }
    assert!(pings >= 5, "pinged every 100 ms: {pings}");
    // Meanwhile the silent one, which never read and so never ponged, idled out.
    let relay = app.ctx.get::<weapp::realtime::Relay>().unwrap();
    assert_eq!(relay.connections(), 1, "only the silent socket was closed");
    let metrics = app.metrics().await;
    let idled =
        weapp::testing::metric_sample(&metrics, "realtime_closed_total{reason=\"idle_timeout\"}");
    assert_eq!(idled, Some(1.0), "{metrics}");
    assert_eq!(
        request(&mut alive, json!({"type": "ping"})).await["type"],
        "pong"
    );

    // Reading now, the client library answers the old pings into a closed socket,
    // which may cut the read short of the 4009 close frame.
    let code = close_code(&mut silent, Duration::from_secs(5)).await;
    assert!(matches!(code, Some(4009) | None), "{code:?}");
    app.stop().await.unwrap();
}
