// A stand-in for the mini program's `wx` under Node: `wx.request` over fetch,
// `wx.login` through the weapp sandbox (`/__sandbox/login`), storage in memory.
// It records every request, and can drop the answer of a call (the request reaches
// the server, the caller sees a network failure) or hand out a stale login code.
'use strict'

function createWx({ baseUrl, openid, staleLoginCodes = 0 }) {
  const storage = {}
  const requests = []
  const drops = []
  let stale = staleLoginCodes
  return {
    requests,
    /** The next call of `METHOD path` reaches the server but its answer is lost. */
    dropAnswerOf(call) {
      drops.push(call)
    },
    request({ url, method = 'GET', data, header, success, fail }) {
      const call = `${method} ${new URL(url).pathname}`
      requests.push(call)
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
    requestPayment(options) {
      options.fail({ errMsg: 'requestPayment:fail not in a mini program' })
    },
    getStorageSync: (key) => storage[key],
    setStorageSync: (key, value) => {
      storage[key] = value
    },
  }
}

module.exports = { createWx }
