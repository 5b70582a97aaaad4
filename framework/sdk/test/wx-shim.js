// A stand-in for the mini program's `wx` under Node: `wx.request` over fetch,
// `wx.login` through the weapp sandbox (`/__sandbox/login`), storage in memory.
// It records every request, and can drop the answer of a call (the request reaches
// the server, the caller sees a network failure) or hand out a stale login code.
'use strict'

function createWx({ baseUrl, openid, staleLoginCodes = 0 }) {
  const storage = {}
  const requests = []
  const drops = []
  const busy = []
  let stale = staleLoginCodes
  const payments = []
  const sockets = []
  let closeSheet = false
  return {
    requests,
    payments,
    /** The next call of `METHOD path` reaches the server but its answer is lost. */
    dropAnswerOf(call) {
      drops.push(call)
    },
    /** The next call of `METHOD path` is answered `429 code` with `Retry-After` by a
     * busy server, without reaching it. */
    busyOnce(call, code, retryAfterS) {
      busy.push({ call, code, retryAfterS })
    },
    request({ url, method = 'GET', data, header, success, fail }) {
      const call = `${method} ${new URL(url).pathname}`
      requests.push(call)
      const refused = busy.findIndex((b) => b.call === call)
      if (refused >= 0) {
        const [{ code, retryAfterS }] = busy.splice(refused, 1)
        const answer = { code, message: 'busy, try again shortly' }
        setTimeout(() => success({ statusCode: 429, data: answer, header: { 'retry-after': String(retryAfterS) } }))
        return
      }
      fetch(url, { method, headers: header, body: data }).then(
        async (res) => {
          const text = await res.text()
          let body = text
          try {
            body = JSON.parse(text)
          } catch (_) {}
          const headers = {}
          res.headers.forEach((value, name) => {
            headers[name] = value
          })
          const dropped = drops.indexOf(call)
          if (dropped >= 0) {
            drops.splice(dropped, 1)
            fail({ errMsg: 'request:fail timeout' })
          } else {
            success({ statusCode: res.status, data: body, header: headers })
          }
        },
        (e) => fail({ errMsg: `request:fail ${e.message}` }),
      )
    },
    login({ success, fail }) {
      if (stale > 0) {
        stale -= 1
        success({ code: 'stale-code-from-a-previous-wx-login' })
        return
      }
      fetch(`${baseUrl}/__sandbox/login`, { method: 'POST', body: JSON.stringify({ openid }) })
        .then((r) => r.json())
        .then((answer) => success({ code: answer.code }), fail)
    },
    /** The user pays (or, after `closePaymentSheet()`, closes the sheet) in the
     * pay sandbox, by the prepay the parameters name; they must be complete. */
    requestPayment({ timeStamp, nonceStr, package: prepay, signType, paySign, success, fail }) {
      payments.push({ timeStamp, nonceStr, package: prepay, signType, paySign })
      if (![timeStamp, nonceStr, prepay, signType, paySign].every((v) => typeof v === 'string' && v)) {
        fail({ errMsg: 'requestPayment:fail parameter error' })
        return
      }
      const action = closeSheet ? 'cancel' : 'pay'
      closeSheet = false
      fetch(`${baseUrl}/__sandbox/pay/${action}`, { method: 'POST', body: JSON.stringify({ prepay_id: prepay }) })
        .then(async (r) => {
          if (action === 'cancel') fail({ errMsg: 'requestPayment:fail cancel' })
          else if (r.ok) success({ errMsg: 'requestPayment:ok' })
          else fail({ errMsg: `requestPayment:fail ${await r.text()}` })
        }, (e) => fail({ errMsg: `requestPayment:fail ${e.message}` }))
    },
    /** The next `wx.requestPayment` is closed by the user. */
    closePaymentSheet() {
      closeSheet = true
    },
    sockets,
    /** `wx.connectSocket` over Node's WebSocket (Node 22, or 20 with --experimental-websocket). */
    connectSocket({ url, protocols }) {
      const ws = new WebSocket(url, protocols)
      const listeners = { message: [], close: [], error: [] }
      let broken = false
      const emit = (kind, event) => !broken && listeners[kind].forEach((f) => f(event))
      ws.addEventListener('message', (e) => emit('message', { data: e.data }))
      ws.addEventListener('close', (e) => emit('close', { code: e.code, reason: e.reason }))
      ws.addEventListener('error', () => emit('error', { errMsg: 'connectSocket:fail' }))
      const task = {
        onMessage: (f) => listeners.message.push(f),
        onClose: (f) => listeners.close.push(f),
        onError: (f) => listeners.error.push(f),
        send({ data, success, fail }) {
          try {
            ws.send(data)
            if (success) success({})
          } catch (e) {
            if (fail) fail({ errMsg: `sendSocketMessage:fail ${e.message}` })
          }
        },
        close({ code = 1000, reason } = {}) {
          ws.close(code, reason)
        },
        /** The network goes: the mini program sees 1006 at once, the server later. */
        breakConnection() {
          emit('close', { code: 1006, reason: 'network lost' })
          broken = true
          ws.close()
        },
      }
      sockets.push(task)
      return task
    },
    getStorageSync: (key) => storage[key],
    setStorageSync: (key, value) => {
      storage[key] = value
    },
  }
}

module.exports = { createWx }
