//! A minimal plugin, registered at compile time and referenced by the e2e tests only
//! through `use weapp_probe_plugin as _;`. It proves that registration crosses crate
//! boundaries and that a plugin's routes and embedded migrations are used.

use weapp::actix_web::{HttpResponse, web};

/// The probe plugin: `GET /probe` and a `probe_notes` table.
pub struct ProbePlugin;

weapp::register_plugin!(ProbePlugin);

/// Its migrations, one SQL file per backend under `migrations/`.
const MIGRATIONS: &[weapp::db::Migration] = &[weapp::migration!("0001_create_probe_notes")];

impl weapp::Plugin for ProbePlugin {
    fn name(&self) -> &'static str {
        "probe"
    }

    fn routes(&self, cfg: &mut web::ServiceConfig) {
        weapp::api::ApiRoutes::new(cfg)
            .get(
                "/probe",
                "The probe plugin's route",
                weapp::api::Access::Public,
                probe,
            )
            .with(weapp::api::Spec::new().empty(200, "`{\"plugin\": \"probe\"}`"));
    }

    fn migrations(&self) -> &'static [weapp::db::Migration] {
        MIGRATIONS
    }
}

async fn probe() -> HttpResponse {
    HttpResponse::Ok().json(serde_json_value())
}

fn serde_json_value() -> std::collections::BTreeMap<&'static str, &'static str> {
    [("plugin", "probe")].into()
}
