//! Changing the catalogue: administrators add products, change their details, put
//! them on or off sale, and set or adjust stock. Each change commits together with
//! its `catalog.*` event in the outbox, so the audit log records every change that
//! happened and none that did not.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use weapp::{transaction, with_conn};

use crate::error::OrderError;
use crate::events::{ProductAdded, ProductChanged, StockChanged};
use crate::model::{
    CatalogEntry, MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, MAX_PRICE_FEN, MAX_STOCK, NewProduct,
    Page, ProductChange, StockChange, now_ms, page_offset, rfc3339,
};
use crate::outbox::NewEvent;
use crate::schema::{products, stock};
use crate::service::Orders;
use crate::statements::InsertEvent;

/// Attempts at setting an absolute stock while orders keep changing it.
const STOCK_SET_ATTEMPTS: usize = 20;

/// A row of [`catalog_rows`], in its column order.
#[derive(Debug, Queryable)]
struct EntryRow {
    id: i64,
    name: String,
    description: String,
    price_fen: i64,
    qty: i64,
    active: bool,
    created_at: i64,
}

/// The catalogue, products joined with their stock, as administrators see it.
#[diesel::dsl::auto_type]
fn catalog_rows() -> _ {
    products::table
        .inner_join(stock::table.on(stock::product_id.eq(products::id)))
        .select((
            products::id,
            products::name,
            products::description,
            products::price_fen,
            stock::qty,
            products::active,
            products::created_at,
        ))
}

/// One product's row of [`catalog_rows`].
#[diesel::dsl::auto_type]
fn catalog_row(id: i64) -> _ {
    catalog_rows().filter(products::id.eq(id))
}

fn entry(row: EntryRow) -> CatalogEntry {
    CatalogEntry {
        id: row.id,
        name: row.name,
        description: row.description,
        price_fen: row.price_fen,
        stock: row.qty,
        active: row.active,
        created_at: rfc3339(row.created_at),
    }
}

/// A new row of `products`.
#[derive(Debug, Insertable)]
#[diesel(table_name = products)]
struct NewProductRow<'a> {
    name: &'a str,
    description: &'a str,
    price_fen: i64,
    active: bool,
    created_at: i64,
}

weapp::insert_returning_id! {
    /// Adding a product and learning its id.
    trait InsertProduct { fn insert_product(&NewProductRow<'_>) } => products::table, products::id;
}

/// Changed columns of `products`; `None` leaves a column as it is.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = products)]
struct ProductColumnsChange<'a> {
    name: Option<&'a str>,
    description: Option<&'a str>,
    price_fen: Option<i64>,
    active: Option<bool>,
}

fn invalid(message: impl Into<String>) -> OrderError {
    OrderError::InvalidProduct(message.into())
}

fn check_name(name: &str) -> Result<(), OrderError> {
    let chars = name.chars().count();
    if name.trim().is_empty() || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(invalid(format!(
            "name must be 1 to {MAX_NAME_CHARS} characters without control characters"
        )));
    }
    Ok(())
}

fn check_description(description: &str) -> Result<(), OrderError> {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(invalid(format!(
            "description must be at most {MAX_DESCRIPTION_CHARS} characters"
        )));
    }
    Ok(())
}

fn check_price(price_fen: i64) -> Result<(), OrderError> {
    if !(0..=MAX_PRICE_FEN).contains(&price_fen) {
        return Err(invalid(format!("price_fen must be 0 to {MAX_PRICE_FEN}")));
    }
    Ok(())
}

fn check_stock(qty: i64) -> Result<(), OrderError> {
    if !(0..=MAX_STOCK).contains(&qty) {
        return Err(invalid(format!("stock must be 0 to {MAX_STOCK}")));
    }
    Ok(())
}

/// The fields `change` sets, by name; refused if it sets none or a bad value.
fn checked_change(change: &ProductChange) -> Result<Vec<String>, OrderError> {
    let mut changed = Vec::new();
    if let Some(name) = &change.name {
        check_name(name)?;
        changed.push("name".to_owned());
    }
    if let Some(description) = &change.description {
        check_description(description)?;
        changed.push("description".to_owned());
    }
    if let Some(price_fen) = change.price_fen {
        check_price(price_fen)?;
        changed.push("price_fen".to_owned());
    }
    if change.active.is_some() {
        changed.push("active".to_owned());
    }
    if changed.is_empty() {
        return Err(invalid(
            "nothing to change: give name, description, price_fen or active",
        ));
    }
    Ok(changed)
}

impl Orders {
    /// Every product, on sale or not, by id: the administrators' view.
    pub async fn catalog(
        &self,
        page: i64,
        per_page: i64,
    ) -> Result<Page<CatalogEntry>, OrderError> {
        let mut conn = self.db.conn().await?;
        let offset = page_offset(page, per_page);
        let rows: Vec<EntryRow> = with_conn!(conn, |c| {
            catalog_rows()
                .order(products::id)
                .limit(per_page + 1)
                .offset(offset)
                .load(c)
                .await
        })?;
        Ok(Page::from_rows(rows, page, per_page, entry))
    }

    /// One product, on sale or not.
    pub async fn catalog_entry(&self, id: i64) -> Result<CatalogEntry, OrderError> {
        let mut conn = self.db.conn().await?;
        let row = with_conn!(conn, |c| catalog_row(id).first(c).await.optional())?;
        row.map(entry).ok_or(OrderError::ProductNotFound)
    }

    /// Adds a product with its initial stock on behalf of `admin` (an admin token's
    /// name, or `seed`); returns it as stored.
    pub async fn add_product(
        &self,
        new: &NewProduct,
        admin: &str,
    ) -> Result<CatalogEntry, OrderError> {
        check_name(&new.name)?;
        check_description(&new.description)?;
        check_price(new.price_fen)?;
        check_stock(new.stock)?;
        let now = now_ms();
        let row = NewProductRow {
            name: new.name.trim(),
            description: &new.description,
            price_fen: new.price_fen,
            active: new.active,
            created_at: now,
        };
        let mut conn = self.db.conn().await?;
        let (id, event_id) = transaction!(conn, self.config.isolation, |c| {
            let id = c.insert_product(&row).await?;
            diesel::insert_into(stock::table)
                .values((stock::product_id.eq(id), stock::qty.eq(new.stock)))
                .execute(c)
                .await?;
            let added = ProductAdded {
                product_id: id,
                price_fen: new.price_fen,
                qty: new.stock,
                active: new.active,
                admin: admin.to_owned(),
            };
            let event_id = c.insert_event(&NewEvent::new(&added, now)).await?;
            Ok::<_, OrderError>((id, event_id))
        })?;
        drop(conn);
        self.outbox.hint([event_id]);
        Ok(entry(EntryRow {
            id,
            name: row.name.to_owned(),
            description: row.description.to_owned(),
            price_fen: row.price_fen,
            qty: new.stock,
            active: row.active,
            created_at: row.created_at,
        }))
    }

    /// Changes the fields `change` gives of product `id`; orders already placed keep
    /// the price they were placed at.
    pub async fn change_product(
        &self,
        id: i64,
        change: &ProductChange,
        admin: &str,
    ) -> Result<CatalogEntry, OrderError> {
        let changed = checked_change(change)?;
        let columns = ProductColumnsChange {
            name: change.name.as_deref().map(str::trim),
            description: change.description.as_deref(),
            price_fen: change.price_fen,
            active: change.active,
        };
        let now = now_ms();
        let mut conn = self.db.conn().await?;
        let (event_id, row) = transaction!(conn, self.config.isolation, |c| {
            let updated = diesel::update(products::table.find(id))
                .set(&columns)
                .execute(c)
                .await?;
            if updated == 0 {
                return Err(OrderError::ProductNotFound);
            }
            let row: EntryRow = catalog_row(id).first(c).await?;
            let event = ProductChanged {
                product_id: id,
                changed: changed.clone(),
                price_fen: row.price_fen,
                active: row.active,
                admin: admin.to_owned(),
            };
            let event_id = c.insert_event(&NewEvent::new(&event, now)).await?;
            Ok::<_, OrderError>((event_id, row))
        })?;
        drop(conn);
        self.outbox.hint([event_id]);
        Ok(entry(row))
    }

    /// Sets (`qty`) or adjusts (`delta`) product `id`'s units on hand. An adjustment
    /// applies to whatever the stock is when it lands, so it is safe while orders
    /// take units; one that would leave fewer than none is refused.
    pub async fn change_stock(
        &self,
        id: i64,
        change: StockChange,
        admin: &str,
    ) -> Result<CatalogEntry, OrderError> {
        let changed = match (change.qty, change.delta) {
            (Some(qty), None) => {
                check_stock(qty)?;
                self.set_stock(id, qty, admin).await
            }
            (None, Some(delta)) => {
                if delta.unsigned_abs() > MAX_STOCK as u64 {
                    return Err(invalid(format!(
                        "delta must be -{MAX_STOCK} to {MAX_STOCK}"
                    )));
                }
                self.adjust_stock(id, delta, admin).await
            }
            _ => Err(invalid("give exactly one of qty and delta")),
        };
        if changed.is_ok() {
            // A product on flash sale: Redis counts the new figure at once.
            self.units_returned(&[id], []);
        }
        changed
    }

    /// Sets the stock to `qty` with a compare-and-set on the units it found, so the
    /// recorded delta is exact even while orders take units.
    async fn set_stock(&self, id: i64, qty: i64, admin: &str) -> Result<CatalogEntry, OrderError> {
        for _ in 0..STOCK_SET_ATTEMPTS {
            let now = now_ms();
            let mut conn = self.db.conn().await?;
            let written = transaction!(conn, self.config.isolation, |c| {
                let found: Option<i64> = stock::table
                    .find(id)
                    .select(stock::qty)
                    .first(c)
                    .await
                    .optional()?;
                let Some(found) = found else {
                    return Err(OrderError::ProductNotFound);
                };
                let updated = diesel::update(stock::table.find(id).filter(stock::qty.eq(found)))
                    .set(stock::qty.eq(qty))
                    .execute(c)
                    .await?;
                if updated == 0 {
                    return Ok(None);
                }
                let event = StockChanged {
                    product_id: id,
                    qty,
                    delta: qty - found,
                    admin: admin.to_owned(),
                };
                let event_id = c.insert_event(&NewEvent::new(&event, now)).await?;
                let row: EntryRow = catalog_row(id).first(c).await?;
                Ok::<_, OrderError>(Some((event_id, row)))
            })?;
            if let Some((event_id, row)) = written {
                self.outbox.hint([event_id]);
                return Ok(entry(row));
            }
        }
        Err(OrderError::Concurrent)
    }

    /// Adds `delta` units in one guarded statement.
    async fn adjust_stock(
        &self,
        id: i64,
        delta: i64,
        admin: &str,
    ) -> Result<CatalogEntry, OrderError> {
        let now = now_ms();
        let mut conn = self.db.conn().await?;
        let (event_id, row) = transaction!(conn, self.config.isolation, |c| {
            let updated = diesel::update(
                stock::table
                    .find(id)
                    .filter((stock::qty + delta).ge(0))
                    .filter((stock::qty + delta).le(MAX_STOCK)),
            )
            .set(stock::qty.eq(stock::qty + delta))
            .execute(c)
            .await?;
            let row: Option<EntryRow> = catalog_row(id).first(c).await.optional()?;
            let Some(row) = row else {
                return Err(OrderError::ProductNotFound);
            };
            let qty = row.qty;
            if updated == 0 {
                return Err(OrderError::StockOutOfRange {
                    product_id: id,
                    qty,
                });
            }
            let event = StockChanged {
                product_id: id,
                qty,
                delta,
                admin: admin.to_owned(),
            };
            let event_id = c.insert_event(&NewEvent::new(&event, now)).await?;
            Ok::<_, OrderError>((event_id, row))
        })?;
        drop(conn);
        self.outbox.hint([event_id]);
        Ok(entry(row))
    }

    /// Adds the `products` whose names the catalogue does not have yet (demo data,
    /// `order seed`); returns those added. Running it again adds nothing.
    pub async fn seed_products(
        &self,
        products: &[NewProduct],
    ) -> Result<Vec<CatalogEntry>, OrderError> {
        let mut added = Vec::new();
        for new in products {
            let mut conn = self.db.conn().await?;
            let name = new.name.trim();
            let exists: i64 = with_conn!(conn, |c| {
                products::table
                    .filter(products::name.eq(name))
                    .count()
                    .get_result(c)
                    .await
            })?;
            drop(conn);
            if exists == 0 {
                added.push(self.add_product(new, "seed").await?);
            }
        }
        Ok(added)
    }
}
