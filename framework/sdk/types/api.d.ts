// Generated from the backend's OpenAPI document by weapp (`cargo run -- sdk <dir>`): do not edit.

/** `POST /api/admin/message-templates` body: a library template and its keywords. */
export interface AddTemplate {
  /** Its keywords to use, in order: 2 to 5. */
  kid_list: Array<number>
  /** What the subscription is for, shown to the user: at most 60 characters. */
  scene_desc?: string
  /** The library template's id (`tid`). */
  tid: string
}

/** A product as an administrator sees it: inactive ones too. */
export interface CatalogEntry {
  /** Whether buyers see it and may order it. */
  active: boolean
  /** When it was added (RFC 3339). */
  created_at: string
  /** Description. */
  description: string
  /** Id. */
  id: number
  /** Name. */
  name: string
  /** Unit price in fen. */
  price_fen: number
  /** Units on hand. */
  stock: number
}

/** One dependency's state in `/readyz`. */
export interface Check {
  /** What answers: `postgres`, `mysql`, `sqlite`, `redis` or `memory`. */
  backend: string
  /** Why it is down, in general terms (`unreachable`, or no answer in time); the
driver's own message, which may name hosts and users, stays in the log. */
  error?: string | null
  /** `up` or `down`. */
  status: string
}

/** Body of `POST /api/orders`. */
export interface CreateOrder {
  /** What to buy, 1 to `order.max_items` lines (default 50); each product at most once. */
  items: Array<OrderLine>
}

export interface Error {
  /** stable, machine-readable */
  code: string
  message: string
  request_id?: string
}

/** Answer of `GET /api/me/export`. */
export interface Export {
  /** What each plugin holds about the caller, by plugin name. */
  data: Record<string, unknown>
  /** When the export was made (RFC 3339). */
  exported_at: string
  /** The caller. */
  user_id: number
}

/** Body of `PUT /api/admin/products/{id}/flash-sale`. */
export interface FlashSaleSettings {
  /** Most units one buyer may hold of the product in the sale (their cancelled
orders give theirs back). */
  per_user_limit: number
}

/** A flash sale as an administrator sees it (`/api/admin/products/{id}/flash-sale`). */
export interface FlashSaleView {
  /** Whether orders of the product are reserved in Redis now. */
  active: boolean
  /** Units Redis still lets buyers reserve; `null` until the counters are loaded,
and once an ended sale's are dropped. */
  available?: number | null
  /** When it ended (RFC 3339), if it did. */
  ended_at?: string | null
  /** Most units one buyer may hold in the sale. */
  per_user_limit: number
  /** The product. */
  product_id: number
  /** Reservations not yet written to the database (or written and not yet
settled in Redis). */
  queued: number
  /** When the sale started (RFC 3339); a buyer's units count from then. */
  started_at: string
  /** Units on hand in the database (not yet taken by a written order). */
  stock: number
}

/** Body of `/healthz`. */
export interface Health {
  /** Commit weapp was built from. */
  framework_git_hash: string
  /** The weapp version the app was built on. */
  framework_version: string
  /** Commit the app was built from (`unknown` unless the app says, with
`App::commit`). */
  git_hash: string
  /** RFC 3339 time of the last configuration reload (SIGHUP), if any. */
  last_reload?: string | null
  /** Requests per second over the last minute. */
  qps_1m: number
  /** RFC 3339 start time. */
  started_at: string
  /** Always `ok` when the process answers. */
  status: string
  /** Seconds since start. */
  uptime_s: number
  /** The app's version. */
  version: string
}

/** `POST /api/auth/login` body. */
export interface LoginRequest {
  /** The code `wx.login` gave the mini program. */
  code: string
}

/** What `/api/me` and the profile/phone updates answer. */
export interface Me {
  /** Avatar URL, once the profile was shared. */
  avatar_url?: string | null
  /** The user's id. */
  id: number
  /** Nickname, once the profile was shared. */
  nickname?: string | null
  /** Masked phone number (`138****8000`), once shared. */
  phone?: string | null
}

/** A product to add to the catalogue; also the body of `POST /api/admin/products`. */
export interface NewProduct {
  /** For sale at once (default `true`). */
  active?: boolean
  /** Description, at most 2,000 characters. */
  description?: string
  /** Name, 1 to 200 characters, not only spaces, no control characters. */
  name: string
  /** Unit price in fen. */
  price_fen: number
  /** Initial units on hand. */
  stock?: number
}

/** Answer of `POST /api/orders`: 201 `pending`, or 202 `reserved` in a flash sale. */
export interface OrderCreated {
  /** The new order. */
  order_id: number
  /** `pending` (201), or `reserved` (202: a flash sale; `pending` once written,
which `GET /api/orders/{id}` shows). */
  status: OrderStatus
  /** What the buyer pays, in fen. */
  total_fen: number
}

/** A line of an order as shown to its buyer. */
export interface OrderItem {
  /** Unit price in fen when ordered. */
  price_fen: number
  /** The product. */
  product_id: number
  /** Units. */
  qty: number
}

/** One line of `POST /api/orders`. */
export interface OrderLine {
  /** The product. */
  product_id: number
  /** Units, 1 to `order.max_qty` (default 1,000). */
  qty: number
}

/** Where an order is in its life. */
export type OrderStatus = "reserved" | "pending" | "paid" | "cancelled" | "refunded"

/** An order as shown to its buyer. */
export interface OrderView {
  /** `user`, `timeout`, or `out_of_stock` (a flash-sale reservation the
database had no unit left for) when cancelled. */
  cancel_reason?: string | null
  /** RFC 3339. */
  created_at: string
  /** RFC 3339; when it is cancelled unless paid before. */
  expires_at: string
  /** Lines. */
  items: Array<OrderItem>
  /** Id. */
  order_id: number
  /** RFC 3339. */
  paid_at?: string | null
  /** State. */
  status: OrderStatus
  /** Total in fen. */
  total_fen: number
}

/** One page of a list. */
export interface PageCatalogEntry {
  /** Whether a next page exists. */
  has_more: boolean
  /** This page's entries. */
  items: Array<CatalogEntry>
  /** 1-based page number. */
  page: number
  /** Page size. */
  per_page: number
}

/** One page of a list. */
export interface PageOrderView {
  /** Whether a next page exists. */
  has_more: boolean
  /** This page's entries. */
  items: Array<OrderView>
  /** 1-based page number. */
  page: number
  /** Page size. */
  per_page: number
}

/** One page of a list. */
export interface PageProduct {
  /** Whether a next page exists. */
  has_more: boolean
  /** This page's entries. */
  items: Array<Product>
  /** 1-based page number. */
  page: number
  /** Page size. */
  per_page: number
}

/** `POST /api/auth/phone` body. */
export interface PhoneRequest {
  /** The code of a `getPhoneNumber` button. */
  code: string
}

/** A product as the catalogue shows it. */
export interface Product {
  /** Description. */
  description: string
  /** Id. */
  id: number
  /** Name. */
  name: string
  /** Unit price in fen. */
  price_fen: number
  /** Units left. */
  stock: number
}

/** Body of `PATCH /api/admin/products/{id}`: the fields to change; absent ones stay. */
export interface ProductChange {
  /** Put on sale (`true`) or take off sale (`false`). */
  active?: boolean | null
  /** New description. */
  description?: string | null
  /** New name (as in `NewProduct`). */
  name?: string | null
  /** New unit price in fen; orders already placed keep theirs. */
  price_fen?: number | null
}

/** `POST /api/auth/profile` body: what `wx.getUserProfile` returned. */
export interface ProfileRequest {
  encryptedData: string
  iv: string
}

/** Body of `/readyz`; on failure it also carries the error shape's `code` and `message`. */
export interface Readiness {
  /** `database` and `kv`. */
  checks: Record<string, unknown>
  /** `not_ready` when unavailable. */
  code?: string | null
  /** Names the failing dependencies. */
  message?: string | null
  /** The request id. */
  request_id?: string | null
  /** `ready` or `unavailable`. */
  status: string
}

/** `POST /api/auth/refresh` body. */
export interface RefreshRequest {
  /** The current refresh token; it is used up by this call. */
  refresh_token: string
}

/** Body of `POST /api/admin/orders/{id}/refund`. */
export interface RefundOrder {
  /** Shown to the buyer by WeChat Pay (at most 80 characters). */
  reason?: string | null
}

/** Answer of `POST /api/admin/orders/{id}/refund` (202). */
export interface RefundRequested {
  /** Refunded, in fen. */
  amount_fen: number
  /** The order. */
  order_id: number
  /** Our refund number. */
  out_refund_no: string
  /** WeChat Pay's refund id. */
  refund_id: string
  /** WeChat Pay's refund status, e.g. `PROCESSING`. */
  status: string
}

/** What the mini program passes to `wx.requestPayment`. */
export interface RequestPayment {
  /** Random string. */
  nonceStr: string
  /** `prepay_id=…`. */
  package: string
  /** RSA-SHA256 over `appId\ntimeStamp\nnonceStr\npackage\n`. */
  paySign: string
  /** Always `RSA`. */
  signType: string
  /** Unix seconds, as a string. */
  timeStamp: string
}

/** Body of `PUT /api/admin/products/{id}/stock`: exactly one of `qty` (units on hand
from now) or `delta` (units to add, negative to remove; safe while orders take
units concurrently). */
export interface StockChange {
  /** Units to add (or remove, if negative). */
  delta?: number | null
  /** Units on hand from now. */
  qty?: number | null
}

/** Answer of `POST /api/admin/message-templates/sync`. */
export interface Synced {
  /** How many templates the app has. */
  templates: number
}

/** Answer of `POST /api/admin/message-templates` (201). */
export interface TemplateAdded {
  /** WeChat's `priTmplId` of the new template. */
  template_id: string
}

/** A cached template. */
export interface TemplateRow {
  /** Keyword layout. */
  content: string
  /** 2 one-time, 3 long-term. */
  kind: number
  /** Unix milliseconds. */
  synced_at: number
  /** WeChat's `priTmplId`. */
  template_id: string
  /** Title. */
  title: string
}

/** Answer of `GET /api/admin/message-templates`. */
export interface Templates {
  /** The cached templates. */
  templates: Array<TemplateRow>
}

/** Tokens handed to the mini program. */
export interface TokenResponse {
  /** JWT for `Authorization: Bearer`. */
  access_token: string
  /** Seconds the access token lives. */
  expires_in: number
  /** Opaque token for `/api/auth/refresh`; single use. */
  refresh_token: string
  /** The user's id. */
  user_id: number
}

/** Every error `code` an operation documents. */
export type ErrorCode =
  | "admin_token_required"
  | "code_used"
  | "events_behind"
  | "expired_token"
  | "flash_sale_busy"
  | "flash_sale_limit"
  | "flash_sale_loading"
  | "flash_sale_single_line"
  | "flash_sale_unsupported"
  | "high_risk_user"
  | "idempotency_key_reused"
  | "invalid_body"
  | "invalid_code"
  | "invalid_flash_sale"
  | "invalid_idempotency_key"
  | "invalid_order"
  | "invalid_order_state"
  | "invalid_phone_code"
  | "invalid_product"
  | "invalid_query"
  | "invalid_refresh_token"
  | "invalid_signature"
  | "invalid_template_request"
  | "invalid_token"
  | "malformed_json"
  | "missing_idempotency_key"
  | "missing_token"
  | "not_found"
  | "not_websocket"
  | "nothing_to_pay"
  | "order_not_paid"
  | "order_not_payable"
  | "out_of_stock"
  | "pay_error"
  | "pay_not_configured"
  | "pay_unavailable"
  | "payload_too_large"
  | "profile_in_progress"
  | "push_handler_failed"
  | "push_not_configured"
  | "refresh_token_reused"
  | "relay_full"
  | "request_in_progress"
  | "revoked_session"
  | "stale_session_key"
  | "stock_out_of_range"
  | "too_many_connections"
  | "too_many_pending_orders"
  | "too_many_pending_units"
  | "total_too_large"
  | "unknown_field"
  | "unknown_product"
  | "unknown_template"
  | "wechat_error"
  | "wechat_unavailable"

/** Each operation's request body and successful answer, by `METHOD path`. */
export interface Operations {
  'GET /api/admin/message-templates': { body: never; answer: Templates }
  'POST /api/admin/message-templates': { body: AddTemplate; answer: TemplateAdded }
  'POST /api/admin/message-templates/sync': { body: never; answer: Synced }
  'DELETE /api/admin/message-templates/{id}': { body: never; answer: null }
  'POST /api/admin/orders/{id}/refund': { body: RefundOrder; answer: RefundRequested }
  'GET /api/admin/products': { body: never; answer: PageCatalogEntry }
  'POST /api/admin/products': { body: NewProduct; answer: CatalogEntry }
  'GET /api/admin/products/{id}': { body: never; answer: CatalogEntry }
  'PATCH /api/admin/products/{id}': { body: ProductChange; answer: CatalogEntry }
  'DELETE /api/admin/products/{id}/flash-sale': { body: never; answer: FlashSaleView }
  'GET /api/admin/products/{id}/flash-sale': { body: never; answer: FlashSaleView }
  'PUT /api/admin/products/{id}/flash-sale': { body: FlashSaleSettings; answer: FlashSaleView }
  'PUT /api/admin/products/{id}/stock': { body: StockChange; answer: CatalogEntry }
  'POST /api/auth/login': { body: LoginRequest; answer: TokenResponse }
  'POST /api/auth/logout': { body: never; answer: null }
  'POST /api/auth/logout-all': { body: never; answer: null }
  'POST /api/auth/phone': { body: PhoneRequest; answer: Me }
  'POST /api/auth/profile': { body: ProfileRequest; answer: Me }
  'POST /api/auth/refresh': { body: RefreshRequest; answer: TokenResponse }
  'DELETE /api/me': { body: never; answer: null }
  'GET /api/me': { body: never; answer: Me }
  'GET /api/me/export': { body: never; answer: Export }
  'GET /api/openapi.json': { body: never; answer: null }
  'GET /api/orders': { body: never; answer: PageOrderView }
  'POST /api/orders': { body: CreateOrder; answer: OrderCreated }
  'GET /api/orders/{id}': { body: never; answer: OrderView }
  'POST /api/orders/{id}/cancel': { body: never; answer: OrderView }
  'POST /api/orders/{id}/pay': { body: never; answer: RequestPayment }
  'POST /api/pay/notify/{merchant}': { body: never; answer: null }
  'GET /api/products': { body: never; answer: PageProduct }
  'GET /api/products/{id}': { body: never; answer: Product }
  'GET /debug/pprof/profile': { body: never; answer: null }
  'GET /healthz': { body: never; answer: Health }
  'GET /metrics': { body: never; answer: null }
  'GET /readyz': { body: never; answer: Readiness }
  'GET /wechat/push': { body: never; answer: null }
  'POST /wechat/push': { body: never; answer: null }
  'GET /ws': { body: never; answer: null }
}
