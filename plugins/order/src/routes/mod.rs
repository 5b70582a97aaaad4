//! HTTP handlers; the work happens in [`Orders`].

mod catalog_admin;
mod flash_admin;

use std::sync::Arc;

use weapp::actix_web::http::StatusCode;
use weapp::actix_web::{HttpRequest, HttpResponse, web};
use weapp::api::{Access, ApiRoutes, Spec};
use weapp::auth::{AdminCaller, AuthUser};
use weapp::db::ReadFrom;
use weapp::error::JSON_UTF8;
use weapp::{AppContext, Error};

use crate::idempotency::{IdempotencyKey, StoredResponse};
use crate::model::{
    CreateOrder, OrderCreated, OrderStatus, OrderView, Page, PageQuery, Product, RefundOrder,
};
use crate::payment::Checkout;
use crate::service::Orders;
use crate::transitions::CancelReason;

/// Mounts the plugin's routes.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    ApiRoutes::new(cfg)
        .get(
            "/api/products",
            "Products for sale, paginated",
            Access::Public,
            list_products,
        )
        .with(
            Spec::new()
                .query::<PageQuery>()
                .response::<Page<Product>>(200, "One page of products"),
        )
        .get(
            "/api/products/{id}",
            "One product",
            Access::Public,
            get_product,
        )
        .with(
            Spec::new()
                .response::<Product>(200, "The product")
                .errors(&[(404, "not_found")]),
        )
        .post(
            "/api/orders",
            "Place an order (Idempotency-Key header); in a flash sale, reserve it",
            Access::User,
            create_order,
        )
        .with(
            Spec::new()
                .header::<crate::idempotency::IdempotencyKey>(
                    "Idempotency-Key",
                    "1 to 128 visible ASCII characters, new for each order: a retry with \
                     the same key and body answers the first response again",
                    true,
                )
                .body::<CreateOrder>()
                .response::<OrderCreated>(201, "The order, pending payment")
                .response::<OrderCreated>(
                    202,
                    "Reserved in a flash sale: pending (payable) once written, in moments",
                )
                .errors(&[
                    (400, "missing_idempotency_key"),
                    (400, "invalid_idempotency_key"),
                    (400, "invalid_order"),
                    (409, "out_of_stock"),
                    (409, "request_in_progress"),
                    (409, "too_many_pending_orders"),
                    (409, "too_many_pending_units"),
                    (409, "flash_sale_limit"),
                    (422, "idempotency_key_reused"),
                    (422, "flash_sale_single_line"),
                    (429, "events_behind"),
                    (429, "flash_sale_busy"),
                    (422, "unknown_product"),
                    (422, "total_too_large"),
                    (503, "flash_sale_loading"),
                ]),
        )
        .get(
            "/api/orders",
            "The caller's orders, newest first",
            Access::User,
            list_orders,
        )
        .with(
            Spec::new()
                .query::<PageQuery>()
                .response::<Page<OrderView>>(200, "One page of the caller's orders"),
        )
        .get(
            "/api/orders/{id}",
            "One of the caller's orders",
            Access::User,
            get_order,
        )
        .with(
            Spec::new()
                .response::<OrderView>(200, "The order")
                .errors(&[(404, "not_found")]),
        )
        .post(
            "/api/orders/{id}/cancel",
            "Cancel a pending order and restock",
            Access::User,
            cancel_order,
        )
        .with(
            Spec::new()
                .response::<OrderView>(200, "The order, cancelled")
                .errors(&[(404, "not_found"), (409, "invalid_order_state")]),
        )
        .post(
            "/api/orders/{id}/pay",
            "The wx.requestPayment parameters of a pending order (WeChat Pay)",
            Access::User,
            pay_order,
        )
        .with(
            Spec::new()
                .response::<weapp_pay::RequestPayment>(200, "Pass these to wx.requestPayment")
                .errors(&[
                    (404, "not_found"),
                    (409, "order_not_payable"),
                    (409, "nothing_to_pay"),
                    (502, "pay_error"),
                    (502, "pay_unavailable"),
                    (503, "pay_not_configured"),
                ]),
        )
        .post(
            "/api/admin/orders/{id}/refund",
            "Refund a paid order in full through WeChat Pay",
            Access::Admin,
            refund_order,
        )
        .with(
            Spec::new()
                .body::<RefundOrder>()
                .response::<RefundRequested>(202, "WeChat Pay took the refund")
                .errors(&[
                    (404, "not_found"),
                    (409, "order_not_paid"),
                    (502, "pay_error"),
                    (502, "pay_unavailable"),
                    (503, "pay_not_configured"),
                ]),
        );
    catalog_admin::configure(cfg);
    flash_admin::configure(cfg);
}

/// Answer of `POST /api/admin/orders/{id}/refund` (202).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct RefundRequested {
    /// The order.
    order_id: i64,
    /// Our refund number.
    out_refund_no: String,
    /// WeChat Pay's refund id.
    refund_id: String,
    /// WeChat Pay's refund status, e.g. `PROCESSING`.
    status: String,
    /// Refunded, in fen.
    amount_fen: i64,
}

pub(super) fn orders(ctx: &AppContext) -> Result<Arc<Orders>, Error> {
    ctx.get::<Orders>()
        .ok_or_else(|| Error::unavailable("order_not_ready", "the order plugin has not started"))
}

/// `(page, per_page)` within the configured bounds.
pub(super) fn page_of(orders: &Orders, query: PageQuery) -> Result<(i64, i64), Error> {
    let page = query.page.unwrap_or(1);
    let per_page = query.per_page.unwrap_or(orders.config().page_size);
    let max = orders.config().max_page_size;
    if !(1..=1_000_000).contains(&page) || !(1..=max).contains(&per_page) {
        return Err(Error::bad_request(
            "invalid_query",
            format!("page must be at least 1 and per_page 1 to {max}"),
        ));
    }
    Ok((page, per_page))
}

fn stored(response: StoredResponse) -> HttpResponse {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
    let mut builder = HttpResponse::build(status);
    builder.insert_header(("Content-Type", JSON_UTF8));
    if response.replayed {
        builder.insert_header(("Idempotent-Replayed", "true"));
    }
    let mut body = response.body;
    // A kept refusal is an error like any other: it names this request's id (the
    // first answer's and every replay's own), not one stored with it.
    if !status.is_success()
        && let Ok(serde_json::Value::Object(mut error)) = serde_json::from_str(&body)
        && let Some(request_id) = weapp::http::current_request_id()
    {
        error.insert("request_id".to_owned(), request_id.into());
        body = serde_json::Value::Object(error).to_string();
    }
    builder.body(body)
}

async fn list_products(
    ctx: AppContext,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    let orders = orders(&ctx)?;
    let (page, per_page) = page_of(&orders, query.into_inner())?;
    Ok(HttpResponse::Ok().json(orders.products(page, per_page).await?))
}

async fn get_product(ctx: AppContext, id: web::Path<i64>) -> Result<HttpResponse, Error> {
    let product = orders(&ctx)?
        .product(id.into_inner())
        .await?
        .ok_or_else(|| Error::not_found("product not found"))?;
    Ok(HttpResponse::Ok().json(product))
}

async fn create_order(
    ctx: AppContext,
    user: AuthUser,
    req: HttpRequest,
    body: web::Json<CreateOrder>,
) -> Result<HttpResponse, Error> {
    let key = IdempotencyKey::from_headers(req.headers())?;
    let orders = orders(&ctx)?;
    if let Some(behind) = orders.events_behind() {
        return Ok(events_behind(behind));
    }
    match orders.place_order(user.user_id, &key, &body.items).await {
        Ok(response) => Ok(stored(response)),
        // A flash sale busy or loading: the client comes back in a second.
        Err(e) if crate::flash::RETRY_SOON.contains(&e.code()) => Ok(e.retry_after_response(1)),
        Err(e) => Err(e),
    }
}

/// 429 `events_behind`: event delivery is too far behind to take more orders now.
fn events_behind(behind: i64) -> HttpResponse {
    Error::http(
        StatusCode::TOO_MANY_REQUESTS,
        "events_behind",
        format!("{behind} events wait to be handled; try again shortly"),
    )
    .retry_after_response(1)
}

async fn list_orders(
    ctx: AppContext,
    user: AuthUser,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    let orders = orders(&ctx)?;
    let (page, per_page) = page_of(&orders, query.into_inner())?;
    let from = ctx.read_from(user.user_id).await;
    Ok(HttpResponse::Ok().json(orders.orders_of(user.user_id, page, per_page, from).await?))
}

async fn get_order(
    ctx: AppContext,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, Error> {
    let from = ctx.read_from(user.user_id).await;
    let view = orders(&ctx)?
        .order(user.user_id, id.into_inner(), from)
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

async fn cancel_order(
    ctx: AppContext,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, Error> {
    let orders = orders(&ctx)?;
    let id = id.into_inner();
    // Only the owner's order: someone else's is 404 like any unknown one.
    let view = orders.order(user.user_id, id, ReadFrom::Primary).await?;
    if view.status == OrderStatus::Reserved {
        return Err(Error::conflict(
            "invalid_order_state",
            "the order is reserved and being written; it can be cancelled in a moment",
        ));
    }
    if let Some(checkout) = ctx.get::<Checkout>() {
        checkout.before_cancel(id).await?;
    }
    orders
        .cancel_order(Some(user.user_id), id, CancelReason::User)
        .await?;
    Ok(HttpResponse::Ok().json(orders.order(user.user_id, id, ReadFrom::Primary).await?))
}

fn checkout(ctx: &AppContext) -> Result<Arc<Checkout>, Error> {
    ctx.get::<Checkout>().ok_or_else(|| {
        Error::unavailable(
            "pay_not_configured",
            "no WeChat Pay merchant is configured (pay.merchants)",
        )
    })
}

async fn pay_order(
    ctx: AppContext,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, Error> {
    let id = id.into_inner();
    match checkout(&ctx)?.pay(user.user_id, id).await {
        Ok(params) => Ok(HttpResponse::Ok().json(params)),
        // Not written yet: a flash-sale reservation is payable once it is.
        Err(e)
            if e.code() == "not_found"
                && orders(&ctx)?
                    .order(user.user_id, id, ReadFrom::Primary)
                    .await
                    .is_ok() =>
        {
            Err(Error::conflict(
                "order_not_payable",
                "the order is reserved and being written; it can be paid in a moment",
            ))
        }
        Err(e) => Err(e),
    }
}

async fn refund_order(
    ctx: AppContext,
    admin: AdminCaller,
    id: web::Path<i64>,
    body: Option<web::Json<RefundOrder>>,
) -> Result<HttpResponse, Error> {
    let id = id.into_inner();
    let reason = body.and_then(|b| b.into_inner().reason);
    let refund = checkout(&ctx)?.refund(id, reason, &admin.name).await?;
    tracing::info!(order_id = id, admin = %admin.name, refund_id = %refund.refund_id, "refund requested");
    Ok(HttpResponse::Accepted().json(RefundRequested {
        order_id: id,
        out_refund_no: refund.out_refund_no,
        refund_id: refund.refund_id,
        status: refund.status,
        amount_fen: refund.amount.refund,
    }))
}
