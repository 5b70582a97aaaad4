// The SDK's own API; the backend's types are generated into ./api.d.ts, so only
// what every weapp app serves is named here (an app may leave out the order plugin).
import type { ErrorCode, Operations, TokenResponse } from './api'

export * from './api'

/** A failed call: HTTP `status` (0: no answer came), the server's stable `code`. */
export class WeappError extends Error {
  status: number
  code: ErrorCode | 'network_error' | 'payment_cancelled' | 'payment_failed' | `http_${number}`
  requestId?: string
  /** Seconds the server asked to wait before trying again (`Retry-After`). */
  retryAfterS?: number
}

/** Where tokens are kept. */
export interface TokenStorage {
  get(key: string): string | undefined
  set(key: string, value: string): void
}

export interface ClientOptions {
  /** `https://shop.example.com`, no trailing slash. */
  baseUrl: string
  /** The mini program's `wx`. */
  wx: any
  /** Default: `wx` storage (`weapp.` keys). */
  storage?: TokenStorage
  /** Sign calls under `prefixes` (all when absent), as `guard.signing` expects. */
  signing?: { appid: string; secret: string; prefixes?: string[] }
  /** Tries of an order that got no answer, a 5xx or a busy 429 (default 3). */
  orderAttempts?: number
  retryDelayMs?: number
}

export interface CallOptions {
  query?: Record<string, string | number | boolean | undefined>
  header?: Record<string, string>
  /** Send the access token (default true). */
  auth?: boolean
}

type Answer<K extends string> = K extends keyof Operations ? Operations[K]['answer'] : unknown
type Body<K extends string> = K extends keyof Operations ? Operations[K]['body'] : unknown
/** The lines of `POST /api/orders`, when the app has the order plugin. */
type OrderItems = Body<'POST /api/orders'> extends { items: infer I } ? I : never

export interface Client {
  login(): Promise<TokenResponse>
  logout(): Promise<null>
  get<P extends string>(path: P, options?: CallOptions): Promise<Answer<`GET ${P}`>>
  post<P extends string>(path: P, body?: unknown, options?: CallOptions): Promise<Answer<`POST ${P}`>>
  request(method: string, path: string, options?: CallOptions & { body?: unknown }): Promise<unknown>
  /** Under one Idempotency-Key, retried safely when no answer came or the server
   * was busy (`Retry-After` waited out). `reserved` in a flash sale. */
  placeOrder(items: OrderItems, options?: { idempotencyKey?: string }): Promise<Answer<'POST /api/orders'>>
  /** The order's payment parameters, then `wx.requestPayment`; rejects with
   * `payment_cancelled` (the user closed the sheet) or `payment_failed`. */
  pay(orderId: number): Promise<{ errMsg: string }>
  /** The real-time relay (`GET /ws`) on this client's tokens. */
  realtime(options?: RealtimeOptions): Realtime
  stats: { refreshes: number; logins: number }
}

export interface RealtimeOptions {
  /** Default: the client's `baseUrl` with `ws(s)://` and `/ws`. */
  url?: string
  /** First reconnect delay, doubled per failed try up to `maxBackoffMs`, with jitter. */
  backoffMs?: number
  maxBackoffMs?: number
  /** Renew the token this long before it expires (or at half its life). */
  renewAheadS?: number
  /** The session is over (logout, erasure, refresh refused): log in again. */
  onSessionEnded?: () => void
  onState?: (state: 'open' | 'reconnecting' | 'closed' | 'renewal_failed' | 'rejoin_failed', detail: unknown) => void
}

/** The server's first frame on a socket. */
export interface Welcome {
  type: 'welcome'
  connection_id: string
  user_id: number
  expires_in: number
}

export interface Realtime {
  /** Opens the socket; reopened after a loss until `close()` or the session ends. */
  connect(): Promise<Welcome>
  /** Pushes of a topic (`callback(data, room)`) or a room's messages (`callback(data, from)`); returns an unsubscribe. */
  on(topicOrRoom: string, callback: (data: any, roomOrFrom: any) => void): () => void
  /** Joins now and after every reconnect; rejects with the server's `code`. */
  join(room: string): Promise<unknown>
  leave(room: string): Promise<unknown>
  publish(room: string, data: unknown): Promise<unknown>
  ping(): Promise<unknown>
  close(): void
  stats: { connects: number; renewals: number }
}

export function createClient(options: ClientOptions): Client
export function canonicalRequest(
  method: string,
  path: string,
  query: string,
  timestamp: string,
  nonce: string,
  body: string,
): string
export function memoryStorage(): TokenStorage
export function wxStorage(wx: any, prefix?: string): TokenStorage
