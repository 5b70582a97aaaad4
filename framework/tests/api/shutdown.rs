use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use weapp::actix_web::{HttpResponse, web};
use weapp::testing::TestApp;
use weapp::{AppContext, BackgroundTask, Plugin};

static TASK_SAW_SHUTDOWN: AtomicBool = AtomicBool::new(false);
static STARTS: AtomicUsize = AtomicUsize::new(0);

/// A started-flag service, a slow route and a task that records shutdown.
struct LifecyclePlugin;

struct Greeting(&'static str);

async fn slow() -> HttpResponse {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    HttpResponse::Ok().body("done")
}

async fn greeting(ctx: AppContext) -> HttpResponse {
    let greeting = ctx.get::<Greeting>().expect("inserted by on_start");
    HttpResponse::Ok().body(greeting.0)
}

#[weapp::async_trait::async_trait]
impl Plugin for LifecyclePlugin {
    fn name(&self) -> &'static str {
        "lifecycle"
    }

    fn routes(&self, cfg: &mut web::ServiceConfig) {
        cfg.route("/slow", web::get().to(slow))
            .route("/greeting", web::get().to(greeting));
    }

    async fn on_start(&self, ctx: &AppContext) -> weapp::Result<()> {
        STARTS.fetch_add(1, Ordering::SeqCst);
        ctx.insert(Greeting("hello from on_start"));
        Ok(())
    }

    fn background_tasks(&self, _ctx: &AppContext) -> Vec<BackgroundTask> {
        vec![BackgroundTask::new(
            "watcher",
            |_ctx, shutdown| async move {
                shutdown.wait().await;
                TASK_SAW_SHUTDOWN.store(true, Ordering::SeqCst);
            },
        )]
    }
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests_and_stops_tasks() {
    let app = TestApp::builder()
        .set("server.shutdown_timeout_s", 10)
        .plugin(&LifecyclePlugin)
        .spawn()
        .await;
    assert_eq!(STARTS.load(Ordering::SeqCst), 1, "on_start ran once");
    let response = app.client.get(app.url("/greeting")).send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "hello from on_start");

    let in_flight = tokio::spawn(app.client.get(app.url("/slow")).send());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let address = app.url("/healthz");
    assert!(!TASK_SAW_SHUTDOWN.load(Ordering::SeqCst));
    app.stop().await.unwrap();

    let response = in_flight
        .await
        .unwrap()
        .expect("in-flight request completes");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "done");
    assert!(
        TASK_SAW_SHUTDOWN.load(Ordering::SeqCst),
        "background task was told to stop"
    );
    assert!(
        reqwest::get(&address).await.is_err(),
        "no longer accepting connections"
    );
}
