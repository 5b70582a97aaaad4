// This backend's client for the mini program, on weapp's SDK. `weapp-sdk/` is
// written from the backend's own routes by `cargo run -- sdk miniprogram/weapp-sdk`
// (and by `cargo test` when missing); the backend's tests fail once it no longer
// matches them. Copy this folder into the mini program's source.
'use strict'

const { createClient } = require('./weapp-sdk/src/index.js')

/** The backend's calls for `wx`; `baseUrl` must be a request domain of the mini program. */
function connect(wx, baseUrl = 'http://127.0.0.1:8080') {
  const api = createClient({ baseUrl, wx })
  return {
    api,
    login: () => api.login(),
    me: () => api.get('/api/me'),
    sendFeedback: (body) => api.post('/api/feedback', { body }),
    myFeedback: () => api.get('/api/feedback'),
{%- if with_order %}
    products: () => api.get('/api/products'),
    buy: (productId, qty = 1) => api.placeOrder([{ product_id: productId, qty }]),
    pay: (orderId) => api.pay(orderId),
{%- endif %}
  }
}

module.exports = { connect }
