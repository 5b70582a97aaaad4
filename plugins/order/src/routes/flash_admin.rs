//! `/api/admin/products/{id}/flash-sale`: putting a product on flash sale, ending
//! it, and watching it (operators, `X-Admin-Token`). See [`crate::flash`].

use weapp::actix_web::{HttpResponse, web};
use weapp::api::{Access, ApiRoutes, Spec};
use weapp::auth::AdminCaller;
use weapp::{AppContext, Error};

use super::orders;
use crate::flash::{FlashSaleSettings, FlashSaleView};

const PATH: &str = "/api/admin/products/{id}/flash-sale";

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    ApiRoutes::new(cfg)
        .put(
            PATH,
            "Put a product on flash sale (or change its per-user limit)",
            Access::Admin,
            start,
        )
        .with(
            Spec::new()
                .body::<FlashSaleSettings>()
                .response::<FlashSaleView>(200, "The sale, running, its counters loaded")
                .errors(&[
                    (400, "invalid_flash_sale"),
                    (404, "not_found"),
                    (409, "flash_sale_unsupported"),
                ]),
        )
        .delete(
            PATH,
            "End a product's flash sale: its orders are placed the ordinary way again",
            Access::Admin,
            end,
        )
        .with(
            Spec::new()
                .response::<FlashSaleView>(200, "The sale, ended")
                .errors(&[(404, "not_found"), (409, "flash_sale_unsupported")]),
        )
        .get(
            PATH,
            "A product's flash sale: units on hand, reservable and queued",
            Access::Admin,
            get,
        )
        .with(
            Spec::new()
                .response::<FlashSaleView>(200, "The sale")
                .errors(&[(404, "not_found"), (409, "flash_sale_unsupported")]),
        );
}

async fn start(
    ctx: AppContext,
    admin: AdminCaller,
    id: web::Path<i64>,
    body: web::Json<FlashSaleSettings>,
) -> Result<HttpResponse, Error> {
    let orders = orders(&ctx)?;
    let id = id.into_inner();
    let view = orders
        .flash_sales()?
        .start_sale(id, body.per_user_limit)
        .await?;
    tracing::info!(product_id = id, admin = %admin.name, per_user_limit = body.per_user_limit, "flash sale started");
    Ok(HttpResponse::Ok().json(view))
}

async fn end(
    ctx: AppContext,
    admin: AdminCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, Error> {
    let orders = orders(&ctx)?;
    let id = id.into_inner();
    let view = orders.flash_sales()?.end_sale(id).await?;
    tracing::info!(product_id = id, admin = %admin.name, "flash sale ended");
    Ok(HttpResponse::Ok().json(view))
}

async fn get(
    ctx: AppContext,
    _admin: AdminCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, Error> {
    let orders = orders(&ctx)?;
    Ok(HttpResponse::Ok().json(orders.flash_sales()?.view(id.into_inner()).await?))
}
