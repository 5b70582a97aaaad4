//! The queue: sending, quotas, WeChat's final and retryable errors, and stops.

use serde_json::json;
use weapp::db::Backend;
use weapp::testing::TestApp;
use weapp_message::SendRequest;

use crate::support::*;

async fn send_and_quota(backend: Backend) {
    let app = builder(backend).spawn().await;
    let template = add_template(&app).await;
    let (_, user_id) = app.login("o_receiver").await;
    let refused = messages(&app)
        .send(&app.ctx, request(user_id, &template))
        .await
        .unwrap_err();
    assert_eq!(
        weapp::Error::from(refused).code(),
        "no_subscription_quota",
        "no send without quota"
    );

    subscribe(&app, "o_receiver", user_id, &template, 1).await;
    let id = messages(&app)
        .send(&app.ctx, request(user_id, &template))
        .await
        .unwrap();
    let sent = settled(&app, id).await;
    assert_eq!((sent.state.as_str(), sent.attempts), ("sent", 1));
    assert!(sent.msgid.is_some());
    let delivered = sandbox_messages(&app).await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(
        delivered[0]["touser"], "o_receiver",
        "addressed by the user's openid"
    );
    assert_eq!(delivered[0]["data"]["thing1"]["value"], "茉莉绿茶");
    assert_eq!(delivered[0]["page"], "pages/order/detail?id=1");

    assert_eq!(messages(&app).quota(user_id, &template).await.unwrap(), 0);
    let again = messages(&app)
        .send(&app.ctx, request(user_id, &template))
        .await
        .unwrap_err();
    assert_eq!(weapp::Error::from(again).code(), "no_subscription_quota");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_message_is_sent_once_and_uses_its_quota_on_sqlite() {
    send_and_quota(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_message_is_sent_once_and_uses_its_quota_on_postgres() {
    send_and_quota(Backend::Postgres).await;
}

async fn fault(app: &TestApp, fault: serde_json::Value) {
    app.sandbox_post("/__sandbox/faults", fault).await;
}

async fn final_errors(backend: Backend) {
    let app = builder(backend).spawn().await;
    let template = add_template(&app).await;
    let (_, user_id) = app.login("o_final").await;

    // 43101: WeChat holds no subscription although we counted one.
    messages(&app)
        .grant_quota(user_id, &template, 2)
        .await
        .unwrap();
    let id = messages(&app)
        .send(&app.ctx, request(user_id, &template))
        .await
        .unwrap();
    let failed = settled(&app, id).await;
    assert_eq!(
        (failed.state.as_str(), failed.errcode, failed.attempts),
        ("failed", Some(43101), 1)
    );
    assert_eq!(
        messages(&app).quota(user_id, &template).await.unwrap(),
        0,
        "quota resynced"
    );

    for errcode in [47003, 40037] {
        subscribe(&app, "o_final", user_id, &template, 1).await;
        fault(
            &app,
            json!({"endpoint": "/cgi-bin/message/subscribe/send", "errcode": errcode, "count": 1}),
        )
        .await;
        let id = messages(&app)
            .send(&app.ctx, request(user_id, &template))
            .await
            .unwrap();
        let failed = settled(&app, id).await;
        assert_eq!(
            (failed.state.as_str(), failed.errcode, failed.attempts),
            ("failed", Some(errcode), 1)
        );
        assert!(failed.reason.unwrap().contains(&errcode.to_string()));
    }
    app.stop().await.unwrap();
}

/// Queues one message for a freshly logged-in user holding one quota:
/// `(message id, user id, template id)`.
async fn queue_one(app: &TestApp, openid: &str) -> (i64, i64, String) {
    let template = add_template(app).await;
    let (_, user_id) = app.login(openid).await;
    subscribe(app, openid, user_id, &template, 1).await;
    let id = messages(app)
        .send(&app.ctx, request(user_id, &template))
        .await
        .unwrap();
    (id, user_id, template)
}

async fn retried_errors(backend: Backend) {
    let app = builder(backend)
        .set("wechat.timeout_ms", 400)
        .set("message.max_attempts", 3)
        .spawn()
        .await;
    fault(
        &app,
        json!({"endpoint": "/cgi-bin/message/subscribe/send", "errcode": -1, "count": 2}),
    )
    .await;
    let (id, user_id, template) = queue_one(&app, "o_retry").await;
    let sent = settled(&app, id).await;
    assert_eq!(
        (sent.state.as_str(), sent.attempts),
        ("sent", 3),
        "two -1 answers, then sent"
    );
    assert_eq!(sandbox_messages(&app).await.len(), 1);

    // A timeout is retried too (WeChat may still have delivered the first one: the
    // sandbox, like WeChat, finishes the slow call after the client gave up).
    subscribe(&app, "o_retry", user_id, &template, 2).await;
    fault(
        &app,
        json!({"endpoint": "/cgi-bin/message/subscribe/send", "latency_ms": 800, "count": 1}),
    )
    .await;
    let id = messages(&app)
        .send(&app.ctx, request(user_id, &template))
        .await
        .unwrap();
    let sent = settled(&app, id).await;
    assert_eq!(
        (sent.state.as_str(), sent.attempts),
        ("sent", 2),
        "timed out once, then sent"
    );

    subscribe(&app, "o_retry", user_id, &template, 1).await;
    fault(
        &app,
        json!({"endpoint": "/cgi-bin/message/subscribe/send", "status": 503}),
    )
    .await;
    let id = messages(&app)
        .send(&app.ctx, request(user_id, &template))
        .await
        .unwrap();
    let failed = settled(&app, id).await;
    assert_eq!(
        (failed.state.as_str(), failed.attempts),
        ("failed", 3),
        "gives up after max_attempts"
    );
    assert!(failed.reason.unwrap().contains("503"));
    app.stop().await.unwrap();
}

/// A worker that stops between claim and send loses nothing: once its lease runs
/// out, the message is sent, exactly once.
async fn stop_after_claim(backend: Backend) {
    let app = builder(backend)
        .set("message.lease_ms", 300)
        .set("message.poll_interval_ms", 3_600_000)
        .spawn()
        .await;
    let (id, _, _) = queue_one(&app, "o_crash").await;
    let messages = messages(&app);

    let now = chrono::Utc::now().timestamp_millis();
    let claimed = messages.claim(now).await.unwrap();
    assert_eq!(claimed.iter().map(|c| c.0).collect::<Vec<_>>(), [id]);
    // ...the claiming worker stops here. Within the lease nobody else takes it:
    assert!(messages.claim(now + 100).await.unwrap().is_empty());
    assert!(sandbox_messages(&app).await.is_empty());

    // A restarted worker, after the lease:
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    assert_eq!(messages.deliver_due(&app.ctx).await.unwrap(), 1);
    assert_eq!(messages.deliver_due(&app.ctx).await.unwrap(), 0);
    let sent = messages.queued(id).await.unwrap().unwrap();
    assert_eq!(sent.state, "sent");
    assert_eq!(sandbox_messages(&app).await.len(), 1, "sent exactly once");
    // The first worker's claim is void: it cannot send again.
    assert_eq!(
        messages
            .deliver(&app.ctx, claimed[0].0, claimed[0].1)
            .await
            .unwrap(),
        "lost_claim"
    );
    assert_eq!(sandbox_messages(&app).await.len(), 1);
    app.stop().await.unwrap();
}

/// A worker that stops while sending (WeChat may have delivered it) leaves the
/// message recorded as failed with an unknown outcome, never sent twice.
async fn stop_while_sending(backend: Backend) {
    let app = builder(backend)
        .set("message.lease_ms", 200)
        .set("message.poll_interval_ms", 3_600_000)
        .spawn()
        .await;
    let (id, _, _) = queue_one(&app, "o_crash_sending").await;
    let messages = messages(&app);
    let claimed = messages
        .claim(chrono::Utc::now().timestamp_millis())
        .await
        .unwrap();
    // The worker marks it sending, then the call to WeChat hangs and the process dies.
    fault(
        &app,
        json!({"endpoint": "/cgi-bin/message/subscribe/send", "latency_ms": 800, "count": 1}),
    )
    .await;
    let worker = {
        let ctx = app.ctx.clone();
        let messages = messages.clone();
        let (id, token) = claimed[0];
        tokio::spawn(async move { messages.deliver(&ctx, id, token).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    worker.abort();
    assert_eq!(messages.queued(id).await.unwrap().unwrap().state, "sending");

    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    messages.deliver_due(&app.ctx).await.unwrap();
    let failed = messages.queued(id).await.unwrap().unwrap();
    assert_eq!(failed.state, "failed");
    assert!(failed.reason.unwrap().starts_with("unknown_outcome"));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn final_wechat_errors_are_recorded_on_sqlite() {
    final_errors(Backend::Sqlite).await;
}

#[tokio::test]
async fn final_wechat_errors_are_recorded_on_postgres() {
    final_errors(Backend::Postgres).await;
}

#[tokio::test]
async fn busy_and_server_errors_are_retried_on_sqlite() {
    retried_errors(Backend::Sqlite).await;
}

#[tokio::test]
async fn busy_and_server_errors_are_retried_on_postgres() {
    retried_errors(Backend::Postgres).await;
}

#[tokio::test]
async fn a_stop_between_claim_and_send_sends_exactly_once_on_sqlite() {
    stop_after_claim(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_stop_between_claim_and_send_sends_exactly_once_on_postgres() {
    stop_after_claim(Backend::Postgres).await;
}

#[tokio::test]
async fn a_stop_while_sending_is_recorded_failed_on_sqlite() {
    stop_while_sending(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_stop_while_sending_is_recorded_failed_on_postgres() {
    stop_while_sending(Backend::Postgres).await;
}

/// One key, one message: sends repeated with a key already queued (in turn, and at
/// once) return the first message's id and use no more quota.
async fn a_dedupe_key_queues_once(backend: Backend) {
    let app = builder(backend).spawn().await;
    let template = add_template(&app).await;
    let (_, user_id) = app.login("o_dedupe").await;
    subscribe(&app, "o_dedupe", user_id, &template, 3).await;
    let keyed = |key: &str| SendRequest {
        dedupe_key: Some(key.to_owned()),
        ..request(user_id, &template)
    };
    let first = messages(&app)
        .send(&app.ctx, keyed("event:1"))
        .await
        .unwrap();
    let again = messages(&app)
        .send(&app.ctx, keyed("event:1"))
        .await
        .unwrap();
    assert_eq!(first, again, "the same message");
    assert_eq!(messages(&app).quota(user_id, &template).await.unwrap(), 2);

    let service = messages(&app);
    let racing = (0..8).map(|_| service.send(&app.ctx, keyed("event:2")));
    let ids: Vec<i64> = futures_util::future::join_all(racing)
        .await
        .into_iter()
        .map(|sent| sent.unwrap())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_ne!(ids[0], first);
    assert_eq!(messages(&app).quota(user_id, &template).await.unwrap(), 1);

    settled(&app, first).await;
    settled(&app, ids[0]).await;
    assert_eq!(
        sandbox_messages(&app).await.len(),
        2,
        "two keys, two messages"
    );
    let refused = messages(&app)
        .send(&app.ctx, keyed(&"k".repeat(129)))
        .await
        .unwrap_err();
    assert_eq!(weapp::Error::from(refused).code(), "invalid_message_data");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_dedupe_key_queues_once_on_sqlite() {
    a_dedupe_key_queues_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_dedupe_key_queues_once_on_postgres() {
    a_dedupe_key_queues_once(Backend::Postgres).await;
}

#[tokio::test]
async fn a_dedupe_key_queues_once_on_mariadb() {
    a_dedupe_key_queues_once(Backend::Mysql).await;
}
