use weapp::db::Backend;
use weapp::testing::TestApp;

#[test]
fn a_plugin_crate_referenced_with_use_as_underscore_is_registered() {
    let names: Vec<&str> = weapp::plugin::registered()
        .iter()
        .map(|p| p.name())
        .collect();
    assert!(names.contains(&"probe"), "registered plugins: {names:?}");
    assert!(names.contains(&"order"), "registered plugins: {names:?}");
    assert!(names.contains(&"audit"), "registered plugins: {names:?}");
    assert!(names.contains(&"message"), "registered plugins: {names:?}");
    assert!(names.contains(&"pay"), "registered plugins: {names:?}");
}

/// The registered plugin's routes are mounted and its embedded migration ran.
async fn probe_plugin_runs_on(backend: Backend) {
    let app = TestApp::builder().database(backend).spawn().await;
    let response = app.client.get(app.url("/probe")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["plugin"], "probe");

    let report = app
        .ctx
        .db()
        .migrate(&[weapp::db::MigrationSet {
            owner: "probe",
            migrations: weapp::plugin::registered()
                .iter()
                .find(|p| p.name() == "probe")
                .unwrap()
                .migrations(),
        }])
        .await
        .unwrap();
    assert!(
        report.applied.is_empty(),
        "already applied at start-up: {report:?}"
    );
    assert_eq!(report.already_applied, 1);
}

#[tokio::test]
async fn probe_plugin_on_sqlite() {
    probe_plugin_runs_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn probe_plugin_on_postgres() {
    probe_plugin_runs_on(Backend::Postgres).await;
}

#[tokio::test]
async fn probe_plugin_on_mariadb() {
    probe_plugin_runs_on(Backend::Mysql).await;
}

#[tokio::test]
async fn a_disabled_plugin_is_not_mounted() {
    let app = TestApp::builder()
        .set("plugins.disabled", ["probe"])
        .spawn()
        .await;
    let response = app.client.get(app.url("/probe")).send().await.unwrap();
    assert_eq!(response.status(), 404);
}
