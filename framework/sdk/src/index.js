// weapp-sdk: the mini program's client of a weapp backend, on `wx.request` only.
//
//   const { createClient } = require('weapp-sdk')
//   const api = createClient({ baseUrl: 'https://shop.example.com', wx })
//   await api.login()
//   const me = await api.get('/api/me')
//
// Login with one retry on a stale `wx.login` code; the access token refreshed once
// for any number of calls that find it expired; X-WX request signing; orders with
// an Idempotency-Key and a safe retry; `wx.requestPayment` from the pay parameters;
// the real-time relay over `wx.connectSocket`; every failure a `WeappError` with the
// server's `code` and `request_id`.
'use strict'

const { createRealtime } = require('./realtime')
const { hmacSha256Hex, sha256Hex } = require('./sha256')

/** A failed call: HTTP `status` (0: no answer), the server's stable `code`. */
class WeappError extends Error {
  constructor({ status, code, message, requestId, retryAfterS }) {
    super(`${code}: ${message || ''}`.trim())
    this.name = 'WeappError'
    this.status = status
    this.code = code
    this.requestId = requestId
    this.retryAfterS = retryAfterS
  }
}

/** 429 codes after which an order is worth trying again once `Retry-After` passed:
 * the server was busy, nothing was kept. */
const BUSY_ORDER_CODES = ['flash_sale_busy', 'events_behind']

/** Codes after which a fresh `wx.login` code is worth one more try. */
const STALE_LOGIN_CODES = ['code_used', 'invalid_code']

function memoryStorage() {
  const values = {}
  return { get: (key) => values[key], set: (key, value) => { values[key] = value } }
}

/** `wx.getStorageSync` / `wx.setStorageSync`, so tokens survive a restart. */
function wxStorage(wx, prefix = 'weapp.') {
  return {
    get: (key) => wx.getStorageSync(prefix + key) || undefined,
    set: (key, value) => wx.setStorageSync(prefix + key, value),
  }
}

function randomHex(wx, bytes) {
  const values = new Uint8Array(bytes)
  if (wx && typeof wx.getRandomValues === 'function') {
    // Mini-program base library 2.x: fills synchronously when given the array.
    wx.getRandomValues({ length: bytes, success: (r) => values.set(new Uint8Array(r.randomValues)) })
  }
  if (values.every((v) => v === 0)) {
    for (let i = 0; i < bytes; i++) values[i] = Math.floor(Math.random() * 256)
  }
  return Array.from(values, (b) => b.toString(16).padStart(2, '0')).join('')
}

/** `k=v&…` of a query object, in the order given. */
function queryString(query) {
  return Object.keys(query || {})
    .filter((k) => query[k] !== undefined && query[k] !== null)
    .map((k) => `${encodeURIComponent(k)}=${encodeURIComponent(query[k])}`)
    .join('&')
}

/**
 * The string a request signature covers (the server's `canonical_request`):
 * METHOD, path?sorted query, timestamp, nonce, hex SHA-256 of the body.
 */
function canonicalRequest(method, path, query, timestamp, nonce, body) {
  const sorted = query.split('&').filter(Boolean).sort().join('&')
  return [method, `${path}?${sorted}`, timestamp, nonce, sha256Hex(body)].join('\n')
}

function promisify(fn) {
  return (options = {}) =>
    new Promise((resolve, reject) => fn({ ...options, success: resolve, fail: reject }))
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * A client of the backend at `baseUrl`.
 * - `wx`: the mini program's `wx` (or a stand-in with `request`, `login`,
 *   `requestPayment`).
 * - `storage`: where tokens live (default: `wx` storage when it has it).
 * - `signing`: `{ appid, secret, prefixes }` to sign calls under `prefixes` (all
 *   when absent) with X-WX-* headers, as `guard.signing` expects.
 * - `orderAttempts`: tries of an order that got no answer, a 5xx or a busy 429
 *   (default 3).
 */
function createClient({ baseUrl, wx, storage, signing, orderAttempts = 3, retryDelayMs = 300 }) {
  const store = storage || (wx && wx.getStorageSync ? wxStorage(wx) : memoryStorage())
  const request = promisify(wx.request)
  let refreshing = null
  const stats = { refreshes: 0, logins: 0 }

  function signed(path) {
    return signing && (!signing.prefixes || signing.prefixes.some((p) => path.startsWith(p)))
  }

  /** One HTTP exchange; resolves with wx.request's answer, rejects only without one. */
  async function send(method, path, { body, query, header } = {}, token) {
    const text = body === undefined ? '' : JSON.stringify(body)
    const qs = queryString(query)
    const headers = { ...(header || {}) }
    if (body !== undefined) headers['Content-Type'] = 'application/json'
    if (token) headers.Authorization = `Bearer ${token}`
    if (signed(path)) {
      const timestamp = String(Math.floor(Date.now() / 1000))
      const nonce = randomHex(wx, 16)
      const canonical = canonicalRequest(method, path, qs, timestamp, nonce, text)
      Object.assign(headers, {
        'X-WX-APPID': signing.appid,
        'X-WX-TIMESTAMP': timestamp,
        'X-WX-NONCE': nonce,
        'X-WX-SIGN': hmacSha256Hex(signing.secret, canonical),
      })
    }
    try {
      return await request({
        url: `${baseUrl}${path}${qs ? `?${qs}` : ''}`,
        method,
        data: text || undefined,
        header: headers,
        dataType: 'json',
      })
    } catch (failure) {
      throw new WeappError({
        status: 0,
        code: 'network_error',
        message: (failure && failure.errMsg) || String(failure),
      })
    }
  }

  function failure(res) {
    const data = res.data && typeof res.data === 'object' ? res.data : {}
    const header = res.header || {}
    const retryAfter = Number(header['retry-after'] || header['Retry-After'])
    return new WeappError({
      status: res.statusCode,
      code: data.code || `http_${res.statusCode}`,
      message: data.message,
      requestId: data.request_id || header['x-request-id'] || header['X-Request-Id'],
      retryAfterS: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined,
    })
  }

  function keep(tokens) {
    store.set('access_token', tokens.access_token)
    store.set('refresh_token', tokens.refresh_token)
    return tokens
  }

  /** One refresh at a time: every caller that found the token expired awaits it. */
  function refresh() {
    if (!refreshing) {
      refreshing = (async () => {
        stats.refreshes += 1
        const res = await send('POST', '/api/auth/refresh', {
          body: { refresh_token: store.get('refresh_token') || '' },
        })
        if (res.statusCode !== 200) throw failure(res)
        return keep(res.data).access_token
      })().finally(() => {
        refreshing = null
      })
    }
    return refreshing
  }

  /** A call; with `auth` (default), the access token, refreshed once if expired. */
  async function call(method, path, options = {}) {
    const auth = options.auth !== false
    const used = auth ? store.get('access_token') : undefined
    let res = await send(method, path, options, used)
    if (auth && res.statusCode === 401 && res.data && res.data.code === 'expired_token') {
      // Another call may have refreshed already: use its token rather than refresh again.
      const current = store.get('access_token')
      const token = current && current !== used ? current : await refresh()
      res = await send(method, path, options, token)
    }
    if (res.statusCode >= 400) throw failure(res)
    return res.statusCode === 204 ? null : res.data
  }

  /** `wx.login`, then `/api/auth/login`; a stale code gets one fresh try. */
  async function login() {
    for (let attempt = 0; ; attempt++) {
      const { code } = await promisify(wx.login)()
      stats.logins += 1
      try {
        return keep(await call('POST', '/api/auth/login', { body: { code }, auth: false }))
      } catch (e) {
        if (attempt === 0 && e instanceof WeappError && STALE_LOGIN_CODES.includes(e.code)) continue
        throw e
      }
    }
  }

  /**
   * Places an order under one Idempotency-Key, tried again (same key, same body)
   * when no answer came, the server failed, or it was busy (429 with
   * `Retry-After`, waited out): the server answers a repeat with the first order,
   * so a retry never buys twice. In a flash sale the answer is `reserved` (202):
   * the order is `pending`, and payable, moments later.
   */
  async function placeOrder(items, { idempotencyKey } = {}) {
    const key = idempotencyKey || `wo-${Date.now().toString(36)}-${randomHex(wx, 8)}`
    let last
    for (let attempt = 0; attempt < orderAttempts; attempt++) {
      try {
        return await call('POST', '/api/orders', {
          body: { items },
          header: { 'Idempotency-Key': key },
        })
      } catch (e) {
        last = e
        const busy = e.status === 429 && BUSY_ORDER_CODES.includes(e.code)
        const again = busy || e.status === 0 || e.status >= 500 || e.code === 'request_in_progress'
        if (!again) throw e
        await sleep(Math.max(retryDelayMs * 2 ** attempt, (e.retryAfterS || 0) * 1000))
      }
    }
    throw last
  }

  /** The order's `wx.requestPayment` parameters, then the payment itself. */
  async function pay(orderId) {
    const params = await call('POST', `/api/orders/${orderId}/pay`)
    try {
      return await promisify(wx.requestPayment)(params)
    } catch (e) {
      // `requestPayment:fail cancel` when the user closed the sheet.
      const message = (e && e.errMsg) || String(e)
      const code = /:fail cancel/.test(message) ? 'payment_cancelled' : 'payment_failed'
      throw new WeappError({ status: 0, code, message })
    }
  }

  return {
    login,
    placeOrder,
    pay,
    request: call,
    get: (path, options) => call('GET', path, options),
    post: (path, body, options) => call('POST', path, { ...options, body }),
    logout: () => call('POST', '/api/auth/logout'),
    /** The relay (`GET /ws`) on this client's tokens; see ./realtime.js. */
    realtime: (options = {}) =>
      createRealtime(
        wx,
        {
          token: () => store.get('access_token'),
          refresh,
          failure: ({ code, message }) => new WeappError({ status: 0, code, message }),
        },
        { url: `${baseUrl.replace(/^http/, 'ws')}/ws`, ...options },
      ),
    stats,
  }
}

module.exports = { createClient, WeappError, canonicalRequest, memoryStorage, wxStorage }
