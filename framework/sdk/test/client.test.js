// The SDK against the running example app (started by tests/e2e/sdk.rs, which
// sets WEAPP_BASE_URL, a 2 s access-token lifetime, and signing on /api/orders).
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { createClient, WeappError } = require('../src/index.js')
const { generate } = require('../scripts/gen-types.js')
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

test('types/api.d.ts is what the running app documents', async () => {
  const doc = await (await fetch(`${baseUrl}/api/openapi.json`)).json()
  const committed = fs.readFileSync(path.join(__dirname, '..', 'types', 'api.d.ts'), 'utf8')
  assert.equal(
    generate(doc),
    committed,
    'types/api.d.ts is stale: run `node scripts/gen-types.js <app>/api/openapi.json` in framework/sdk',
  )
})
