//! Rooms, server pushes, slow readers and shutdown.

use std::time::Duration;

use serde_json::json;
use weapp::realtime::Relay;
use weapp::testing::metric_sample;

use super::{app, close_code, connect, join, next_json, request, send, try_connect};

#[tokio::test]
async fn a_room_message_reaches_every_member_and_only_members() {
    let app = app().spawn().await;
    let (alice_token, alice) = app.login("ws-alice").await;
    let (bob_token, _) = app.login("ws-bob").await;
    let (carol_token, _) = app.login("ws-carol").await;
    let mut alice_ws = connect(&app, &alice_token).await;
    let offered = format!("weapp.v1, bearer.{bob_token}");
    let (mut bob_ws, _) = try_connect(&app, &[("sec-websocket-protocol", &offered)])
        .await
        .expect("bob connects with the subprotocol");
    assert_eq!(next_json(&mut bob_ws).await["type"], "welcome");
    let mut carol_ws = connect(&app, &carol_token).await;
    join(&mut alice_ws, "live:1").await;
    join(&mut bob_ws, "live:1").await;
    join(&mut carol_ws, "live:2").await;

    send(
        &mut alice_ws,
        json!({"type": "publish", "room": "live:1", "data": {"text": "你好"}, "id": 5}),
    )
    .await;
    let expected =
        json!({"type": "message", "room": "live:1", "from": alice, "data": {"text": "你好"}});
    let mut alice_saw = vec![
        next_json(&mut alice_ws).await,
        next_json(&mut alice_ws).await,
    ];
    alice_saw.sort_by_key(|frame| frame["type"].as_str().unwrap_or("").to_owned());
    assert_eq!(
        alice_saw,
        vec![json!({"type": "ack", "id": 5}), expected.clone()]
    );
    assert_eq!(next_json(&mut bob_ws).await, expected);
    // Carol is elsewhere: the next thing she reads is her own pong.
    assert_eq!(
        request(&mut carol_ws, json!({"type": "ping"})).await["type"],
        "pong"
    );

    // After leaving, Bob hears nothing more from the room.
    let left = request(
        &mut bob_ws,
        json!({"type": "leave", "room": "live:1", "id": 1}),
    )
    .await;
    assert_eq!(left, json!({"type": "ack", "id": 1}));
    send(
        &mut alice_ws,
        json!({"type": "publish", "room": "live:1", "data": 2}),
    )
    .await;
    assert_eq!(
        request(&mut bob_ws, json!({"type": "ping"})).await["type"],
        "pong"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_server_pushes_to_every_socket_of_a_user_and_to_a_room() {
    let app = app().spawn().await;
    let (token, user_id) = app.login("ws-pushed").await;
    let (other_token, _) = app.login("ws-not-pushed").await;
    let mut phone = connect(&app, &token).await;
    let mut tablet = connect(&app, &token).await;
    let mut other = connect(&app, &other_token).await;
    join(&mut other, "news").await;

    let relay = app.ctx.get::<Relay>().expect("the relay is in the context");
    relay
        .push_to_user(user_id, "order.paid", &json!({"order_id": 7}))
        .await
        .unwrap();
    let expected = json!({"type": "push", "topic": "order.paid", "data": {"order_id": 7}});
    assert_eq!(next_json(&mut phone).await, expected);
    assert_eq!(next_json(&mut tablet).await, expected);
    relay
        .push_to_room("news", "sale", &json!({"percent": 20}))
        .await
        .unwrap();
    assert_eq!(
        next_json(&mut other).await,
        json!({"type": "push", "topic": "sale", "room": "news", "data": {"percent": 20}}),
        "the other user got the room push, not the order push"
    );
    let metrics = app.metrics().await;
    assert!(
        metric_sample(&metrics, "realtime_connections ").is_some_and(|n| n >= 3.0),
        "{metrics}"
    );
    assert!(metric_sample(&metrics, "realtime_messages_out_total ").is_some_and(|n| n >= 3.0));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_reader_that_falls_behind_is_dropped_while_the_others_keep_receiving() {
    let app = app().set("realtime.send_queue", 16).spawn().await;
    let (slow_token, _) = app.login("ws-slow").await;
    let (fast_token, _) = app.login("ws-fast").await;
    let mut slow = connect(&app, &slow_token).await;
    let mut fast = connect(&app, &fast_token).await;
    join(&mut slow, "news").await;
    join(&mut fast, "news").await;
    let relay = app.ctx.get::<Relay>().unwrap();
    assert_eq!(relay.connections(), 2);

    // 2,000 pushes of 16 KiB: far more than the socket buffers of a client that
    // never reads; the fast client reads each batch before the next.
    let payload = "x".repeat(16 * 1024);
    let total = 2000;
    for batch in 0..total / 8 {
        for i in 0..8 {
            let seq = batch * 8 + i;
            relay
                .push_to_room("news", "tick", &json!({"seq": seq, "pad": payload}))
                .await
                .unwrap();
        }
        for i in 0..8 {
            let frame = next_json(&mut fast).await;
            assert_eq!(frame["data"]["seq"], batch * 8 + i, "in order, none lost");
        }
    }
    assert_eq!(relay.connections(), 1, "the slow reader was dropped");
    let metrics = app.metrics().await;
    assert!(
        metric_sample(&metrics, "realtime_dropped_total{reason=\"too_slow\"}")
            .is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    // What the slow client finally reads ends early: a 4008 close, or a cut connection
    // when even the close frame could not be queued.
    let code = close_code(&mut slow, Duration::from_secs(30)).await;
    assert!(matches!(code, Some(4008) | None), "{code:?}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn stopping_the_server_closes_sockets_with_going_away_at_once() {
    let app = app().set("server.shutdown_timeout_s", 60).spawn().await;
    let (token, _) = app.login("ws-shutdown").await;
    let mut ws = connect(&app, &token).await;
    let stopped = tokio::spawn(app.stop());
    assert_eq!(
        close_code(&mut ws, Duration::from_secs(10)).await,
        Some(1001)
    );
    // The drain did not wait out the 60 s timeout on the socket.
    tokio::time::timeout(Duration::from_secs(20), stopped)
        .await
        .expect("the server stops once its sockets are closed")
        .unwrap()
        .unwrap();
}
