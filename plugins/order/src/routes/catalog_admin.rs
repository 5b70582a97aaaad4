//! `/api/admin/products`: the catalogue for operators (`X-Admin-Token`). Every
//! change is recorded as a `catalog.*` event naming the admin token used, which the
//! audit plugin keeps.

use weapp::actix_web::{HttpResponse, web};
use weapp::api::{Access, ApiRoutes, Spec};
use weapp::auth::AdminCaller;
use weapp::{AppContext, Error};

use super::{orders, page_of};
use crate::model::{CatalogEntry, NewProduct, Page, PageQuery, ProductChange, StockChange};

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    ApiRoutes::new(cfg)
        .get(
            "/api/admin/products",
            "Every product, on sale or not, paginated",
            Access::Admin,
            list,
        )
        .with(
            Spec::new()
                .query::<PageQuery>()
                .response::<Page<CatalogEntry>>(200, "One page of the catalogue"),
        )
        .post(
            "/api/admin/products",
            "Add a product with its initial stock",
            Access::Admin,
            add,
        )
        .with(
            Spec::new()
                .body::<NewProduct>()
                .response::<CatalogEntry>(201, "The product added")
                .errors(&[(400, "invalid_product"), (409, "stock_out_of_range")]),
        )
        .get(
            "/api/admin/products/{id}",
            "One product, on sale or not",
            Access::Admin,
            get,
        )
        .with(
            Spec::new()
                .response::<CatalogEntry>(200, "The product")
                .errors(&[(404, "not_found")]),
        )
        .patch(
            "/api/admin/products/{id}",
            "Change a product's name, description, price or whether it is on sale",
            Access::Admin,
            change,
        )
        .with(
            Spec::new()
                .body::<ProductChange>()
                .response::<CatalogEntry>(200, "The product, changed")
                .errors(&[(400, "invalid_product"), (404, "not_found")]),
        )
        .put(
            "/api/admin/products/{id}/stock",
            "Set (qty) or adjust (delta) a product's units on hand",
            Access::Admin,
            change_stock,
        )
        .with(
            Spec::new()
                .body::<StockChange>()
                .response::<CatalogEntry>(200, "The product, its stock changed")
                .errors(&[
                    (400, "invalid_product"),
                    (404, "not_found"),
                    (409, "stock_out_of_range"),
                ]),
        );
}

async fn list(
    ctx: AppContext,
    _admin: AdminCaller,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    let orders = orders(&ctx)?;
    let (page, per_page) = page_of(&orders, query.into_inner())?;
    Ok(HttpResponse::Ok().json(orders.catalog(page, per_page).await?))
}

async fn add(
    ctx: AppContext,
    admin: AdminCaller,
    body: web::Json<NewProduct>,
) -> Result<HttpResponse, Error> {
    let added = orders(&ctx)?.add_product(&body, &admin.name).await?;
    Ok(HttpResponse::Created().json(added))
}

async fn get(
    ctx: AppContext,
    _admin: AdminCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, Error> {
    Ok(HttpResponse::Ok().json(orders(&ctx)?.catalog_entry(id.into_inner()).await?))
}

async fn change(
    ctx: AppContext,
    admin: AdminCaller,
    id: web::Path<i64>,
    body: web::Json<ProductChange>,
) -> Result<HttpResponse, Error> {
    let changed = orders(&ctx)?
        .change_product(id.into_inner(), &body, &admin.name)
        .await?;
    Ok(HttpResponse::Ok().json(changed))
}

async fn change_stock(
    ctx: AppContext,
    admin: AdminCaller,
    id: web::Path<i64>,
    body: web::Json<StockChange>,
) -> Result<HttpResponse, Error> {
    let changed = orders(&ctx)?
        .change_stock(id.into_inner(), *body, &admin.name)
        .await?;
    Ok(HttpResponse::Ok().json(changed))
}
