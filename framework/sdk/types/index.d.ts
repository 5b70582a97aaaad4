// The SDK's own API; the backend's types are generated into ./api.d.ts.
import type { ErrorCode, Operations, OrderCreated, OrderLine, TokenResponse } from './api'

export * from './api'

/** A failed call: HTTP `status` (0: no answer came), the server's stable `code`. */
export class WeappError extends Error {
  status: number
  code: ErrorCode | 'network_error' | `http_${number}`
  requestId?: string
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
  /** Tries of an order that got no answer or a 5xx (default 3). */
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

export interface Client {
  login(): Promise<TokenResponse>
  logout(): Promise<null>
  get<P extends string>(path: P, options?: CallOptions): Promise<Answer<`GET ${P}`>>
  post<P extends string>(path: P, body?: unknown, options?: CallOptions): Promise<Answer<`POST ${P}`>>
  request(method: string, path: string, options?: CallOptions & { body?: unknown }): Promise<unknown>
  /** Under one Idempotency-Key, retried safely when no answer came. */
  placeOrder(items: OrderLine[], options?: { idempotencyKey?: string }): Promise<OrderCreated>
  /** The order's payment parameters, then `wx.requestPayment`. */
  pay(orderId: number): Promise<unknown>
  stats: { refreshes: number; logins: number }
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
