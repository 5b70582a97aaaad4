// The SDK against the running example app (started by tests/e2e/sdk.rs, which
// sets WEAPP_BASE_URL, a 3 s access-token lifetime, and signing on /api/orders).
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { createClient, WeappError } = require('../src/index.js')
const { createWx } = require('./wx-shim.js')

const baseUrl = process.env.WEAPP_BASE_URL
const signing = {
  appid: process.env.WEAPP_SIGNING_APPID,
  secret: process.env.WEAPP_SIGNING_SECRET,
  prefixes: ['/api/orders'],
}
const productId = Number(process.env.WEAPP_PRODUCT_ID)
const tokenTtlMs = Number(process.env.WEAPP_TOKEN_TTL_S) * 1000
assert.ok(baseUrl, 'WEAPP_BASE_URL: run these tests through tests/e2e/sdk.rs')

let users = 0
function client(options = {}) {
  const wx = createWx({ baseUrl, openid: `o_sdk_${process.pid}_${users++}`, ...options })
  return { wx, api: createClient({ baseUrl, wx, signing, retryDelayMs: 50 }) }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function waitFor(what, check, ms = 5000) {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

test('login, then the caller', async () => {
  const { api } = client()
  const tokens = await api.login()
  const me = await api.get('/api/me')
  assert.equal(me.id, tokens.user_id)
})

test('a stale wx.login code is retried once with a fresh one', async () => {
  const { api } = client({ staleLoginCodes: 1 })
  const tokens = await api.login()
  assert.ok(tokens.access_token)
  assert.equal(api.stats.logins, 2)
})

test('ten calls that find the token expired share one refresh', async () => {
  const { wx, api } = client()
  await api.login()
  // Expiry is checked in whole seconds (`exp < now`): past it by more than one.
  await sleep(tokenTtlMs + 1500)
  const answers = await Promise.all(Array.from({ length: 10 }, () => api.get('/api/me')))
  assert.equal(answers.length, 10)
  assert.ok(answers.every((me) => me.id === answers[0].id))
  assert.equal(api.stats.refreshes, 1)
  assert.equal(wx.requests.filter((r) => r === 'POST /api/auth/refresh').length, 1)
})

test('an order whose answer was lost is retried under its key: one order', async () => {
  const { wx, api } = client()
  await api.login()
  wx.dropAnswerOf('POST /api/orders')
  const placed = await api.placeOrder([{ product_id: productId, qty: 1 }])
  assert.equal(placed.status, 'pending')
  assert.equal(wx.requests.filter((r) => r === 'POST /api/orders').length, 2, 'sent twice')
  const orders = await api.get('/api/orders')
  assert.deepEqual(orders.items.map((o) => o.order_id), [placed.order_id])
})

test('a busy server\'s 429 is waited out as Retry-After says, then the order is placed once', async () => {
  const { wx, api } = client()
  await api.login()
  wx.busyOnce('POST /api/orders', 'flash_sale_busy', 1)
  const started = Date.now()
  const placed = await api.placeOrder([{ product_id: productId, qty: 1 }])
  assert.ok(Date.now() - started >= 1000, 'waited the Retry-After second')
  assert.equal(placed.status, 'pending')
  assert.equal(wx.requests.filter((r) => r === 'POST /api/orders').length, 2)
})

test('pay opens wx.requestPayment with the order\'s parameters; paid, or cancelled', async () => {
  const { wx, api } = client()
  await api.login()
  const kept = await api.placeOrder([{ product_id: productId, qty: 1 }])
  wx.closePaymentSheet()
  await assert.rejects(api.pay(kept.order_id), (e) => e instanceof WeappError && e.code === 'payment_cancelled')
  assert.equal((await api.get(`/api/orders/${kept.order_id}`)).status, 'pending')

  const paid = await api.placeOrder([{ product_id: productId, qty: 1 }])
  assert.deepEqual(await api.pay(paid.order_id), { errMsg: 'requestPayment:ok' })
  const [, sheet] = wx.payments
  assert.match(sheet.package, /^prepay_id=/)
  assert.equal(sheet.signType, 'RSA')
  // The sandbox delivers the payment notification before it answers the payment.
  assert.equal((await api.get(`/api/orders/${paid.order_id}`)).status, 'paid')
})

test('calls under the signed prefix are signed; unsigned ones are refused', async () => {
  const { api } = client()
  const tokens = await api.login()
  const orders = await api.get('/api/orders')
  assert.ok(Array.isArray(orders.items))
  const unsigned = await fetch(`${baseUrl}/api/orders`, {
    headers: { Authorization: `Bearer ${tokens.access_token}` },
  })
  assert.equal(unsigned.status, 401)
  assert.equal((await unsigned.json()).code, 'missing_signature')
})

test('errors carry the code and the request id', async () => {
  const { api } = client()
  await api.login()
  await assert.rejects(api.get('/api/orders/999999999'), (e) => {
    assert.ok(e instanceof WeappError)
    assert.equal(e.status, 404)
    assert.equal(e.code, 'not_found')
    assert.match(e.requestId, /^[0-9a-f-]{16,}$/)
    return true
  })
  await assert.rejects(api.post('/api/orders', { items: [] }, { auth: false }), (e) => e.code === 'missing_token' || e.code === 'missing_signature')
})

test('realtime: a room, a push, a socket that outlives its token and comes back after a loss', async () => {
  const { wx, api } = client()
  await api.login()
  const states = []
  let ended = 0
  const live = api.realtime({ backoffMs: 50, onState: (s) => states.push(s), onSessionEnded: () => ended++ })
  const welcome = await live.connect()
  assert.equal(welcome.type, 'welcome')
  assert.ok(wx.sockets.length === 1 && welcome.user_id > 0)
  const heard = []
  live.on('live:sdk', (data, from) => heard.push([data.n, from]))
  await live.join('live:sdk')
  await live.publish('live:sdk', { n: 1 })
  await waitFor('the room message', () => heard.length === 1)
  assert.deepEqual(heard[0], [1, welcome.user_id])
  await assert.rejects(live.join('nobody:1'), (e) => e instanceof WeappError && e.code === 'forbidden')

  // Past two lifetimes of the token: renewed over REST, handed over with `auth`.
  await sleep(tokenTtlMs * 2 + 500)
  assert.ok(live.stats.renewals >= 2, `renewals: ${live.stats.renewals}`)
  assert.equal(live.stats.connects, 1, 'the socket was never reopened')

  // The network goes: reopened with backoff, the room rejoined.
  wx.sockets[0].breakConnection()
  await waitFor('the reconnect', () => live.stats.connects === 2 && states.at(-1) === 'open')
  assert.ok(states.includes('reconnecting'))
  await live.publish('live:sdk', { n: 2 })
  await waitFor('the message after the reconnect', () => heard.length === 2)

  // The order plugin pushes `order.paid` to the buyer.
  const paid = []
  live.on('order.paid', (data) => paid.push(data.order_id))
  const order = await api.placeOrder([{ product_id: productId, qty: 1 }])
  await api.pay(order.order_id)
  await waitFor('the order.paid push', () => paid.includes(order.order_id))

  // Logout ends the session: closed with 4001, not reopened.
  await api.logout()
  await waitFor('the session end', () => ended === 1)
  await sleep(300)
  assert.equal(live.stats.connects, 2)
  assert.equal(states.at(-1), 'closed')
})
