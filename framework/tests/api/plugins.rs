use weapp::Plugin;
use weapp::plugin::{PluginError, resolve};

macro_rules! test_plugin {
    ($ty:ident, $name:literal, [$($dep:literal),*]) => {
        struct $ty;
        impl Plugin for $ty {
            fn name(&self) -> &'static str {
                $name
            }
            fn dependencies(&self) -> &'static [&'static str] {
                &[$($dep),*]
            }
        }
    };
}

test_plugin!(Audit, "audit", []);
test_plugin!(Message, "message", ["audit"]);
test_plugin!(Order, "order", ["audit", "message"]);
test_plugin!(Alpha, "alpha", []);
test_plugin!(Audit2, "audit", []);
test_plugin!(Lonely, "lonely", ["ghost"]);
test_plugin!(CycleA, "a", ["c"]);
test_plugin!(CycleB, "b", ["a"]);
test_plugin!(CycleC, "c", ["b"]);
test_plugin!(SelfLoop, "selfish", ["selfish"]);

fn names(plugins: &[&'static dyn Plugin]) -> Vec<&'static str> {
    plugins.iter().map(|p| p.name()).collect()
}

#[test]
fn dependencies_come_first_and_ties_sort_by_name() {
    let ordered = resolve(&[&Order, &Message, &Alpha, &Audit], &[]).unwrap();
    assert_eq!(names(&ordered), ["alpha", "audit", "message", "order"]);
    // Input order does not matter.
    let ordered = resolve(&[&Audit, &Alpha, &Message, &Order], &[]).unwrap();
    assert_eq!(names(&ordered), ["alpha", "audit", "message", "order"]);
}

#[test]
fn a_duplicate_name_is_refused() {
    let err = resolve(&[&Audit, &Audit2], &[]).unwrap_err();
    assert_eq!(err, PluginError::Duplicate("audit".into()));
    assert!(err.to_string().contains("two plugins are named `audit`"));
}

#[test]
fn a_missing_dependency_is_named() {
    let err = resolve(&[&Lonely, &Audit], &[]).unwrap_err();
    assert_eq!(
        err,
        PluginError::MissingDependency {
            plugin: "lonely".into(),
            dependency: "ghost".into()
        }
    );
    assert!(err.to_string().contains("use weapp_ghost as _;"), "{err}");
}

#[test]
fn a_cycle_is_spelled_out() {
    let err = resolve(&[&CycleA, &CycleB, &CycleC, &Audit], &[]).unwrap_err();
    assert_eq!(
        err,
        PluginError::Cycle(vec!["a".into(), "c".into(), "b".into(), "a".into()])
    );
    assert_eq!(
        err.to_string(),
        "plugin dependencies form a cycle: a -> c -> b -> a"
    );
    let err = resolve(&[&SelfLoop], &[]).unwrap_err();
    assert_eq!(
        err,
        PluginError::Cycle(vec!["selfish".into(), "selfish".into()])
    );
}

#[test]
fn disabled_plugins_are_left_out() {
    let ordered = resolve(&[&Audit, &Alpha], &["alpha".into()]).unwrap();
    assert_eq!(names(&ordered), ["audit"]);
}

#[test]
fn disabling_a_needed_plugin_is_refused() {
    let err = resolve(&[&Audit, &Message], &["audit".into()]).unwrap_err();
    assert_eq!(
        err,
        PluginError::DependsOnDisabled {
            plugin: "message".into(),
            dependency: "audit".into()
        }
    );
}

#[test]
fn disabling_an_unknown_plugin_is_refused() {
    let err = resolve(&[&Audit], &["audti".into()]).unwrap_err();
    assert_eq!(err, PluginError::UnknownDisabled("audti".into()));
}

#[tokio::test]
async fn the_app_refuses_to_start_with_a_plugin_error() {
    let result = weapp::testing::TestApp::builder()
        .plugin(&CycleA)
        .plugin(&CycleB)
        .plugin(&CycleC)
        .try_spawn()
        .await;
    let err = result.err().expect("a cycle must stop start-up");
    assert!(err.to_string().contains("cycle"), "{err}");
}
