// The relay (`GET /ws`) from the mini program: `wx.connectSocket` with the access
// token as a subprotocol, rooms rejoined and the socket reopened with exponential
// backoff and jitter after a loss, and the token renewed over REST and handed to the
// socket before it expires, so the socket outlives it.
'use strict'

/** Seconds until a JWT's `exp`, read without verifying (the server verifies). */
function secondsLeft(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')
    const json = decodeBase64(payload)
    return JSON.parse(json).exp - Date.now() / 1000
  } catch (_) {
    return 0
  }
}

function decodeBase64(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  let bits = 0
  let value = 0
  const bytes = []
  for (const char of text.replace(/=+$/, '')) {
    value = (value << 6) | alphabet.indexOf(char)
    bits += 6
    if (bits >= 8) {
      bits -= 8
      bytes.push((value >> bits) & 0xff)
    }
  }
  return decodeURIComponent(bytes.map((b) => `%${b.toString(16).padStart(2, '0')}`).join(''))
}

/**
 * A relay connection. `session` is the REST client's side: `token()` (the stored
 * access token), `refresh()` (single-flight refresh, resolves with the new token),
 * `failure(frame)` (a WeappError of an `error` frame).
 */
function createRealtime(wx, session, { url, backoffMs = 500, maxBackoffMs = 30000, renewAheadS = 60, onSessionEnded, onState } = {}) {
  const handlers = new Map()
  const rooms = new Set()
  const pending = new Map()
  let socket = null
  let attempt = 0
  let nextId = 1
  let stopped = false
  let timers = []
  let welcomed = null
  // No welcome since the last open: the upgrade was refused, maybe for the token.
  let unwelcomed = false
  const stats = { connects: 0, renewals: 0 }

  function state(name, detail) {
    if (onState) onState(name, detail)
  }

  function later(fn, ms) {
    timers.push(setTimeout(fn, ms))
  }

  function clearTimers() {
    timers.forEach(clearTimeout)
    timers = []
  }

  /** Sends a request frame; resolves with its `ack` (or `pong`), rejects with its `error`. */
  function request(frame) {
    return new Promise((resolve, reject) => {
      if (!socket) {
        reject(session.failure({ code: 'network_error', message: 'the relay is not connected' }))
        return
      }
      const id = nextId++
      pending.set(id, { resolve, reject })
      socket.send({ data: JSON.stringify({ ...frame, id }) })
    })
  }

  function dispatch(key, ...args) {
    for (const callback of handlers.get(key) || []) callback(...args)
  }

  /** Renews the token at the later of half its life and `renewAheadS` before expiry. */
  function scheduleRenewal(expiresInS) {
    const delayS = Math.max(expiresInS / 2, expiresInS - renewAheadS)
    later(async () => {
      try {
        const token = await session.refresh()
        await request({ type: 'auth', token })
        stats.renewals += 1
        scheduleRenewal(secondsLeft(token))
      } catch (e) {
        // The socket closes at expiry (4002) and reconnects with a fresh token.
        state('renewal_failed', e)
      }
    }, Math.max(0, delayS) * 1000)
  }

  function onMessage({ data }) {
    let frame
    try {
      frame = JSON.parse(data)
    } catch (_) {
      return
    }
    const waiting = frame.id !== undefined && pending.get(frame.id)
    if (waiting) {
      pending.delete(frame.id)
      if (frame.type === 'error') waiting.reject(session.failure(frame))
      else waiting.resolve(frame)
      return
    }
    if (frame.type === 'welcome') {
      attempt = 0
      unwelcomed = false
      scheduleRenewal(frame.expires_in)
      for (const room of rooms) request({ type: 'join', room }).catch((e) => state('rejoin_failed', e))
      state('open', frame)
      if (welcomed) welcomed.resolve(frame)
    } else if (frame.type === 'push') {
      dispatch(frame.topic, frame.data, frame.room)
    } else if (frame.type === 'message') {
      dispatch(frame.room, frame.data, frame.from)
    }
  }

  function onClose({ code, reason }) {
    socket = null
    clearTimers()
    for (const waiting of pending.values()) {
      waiting.reject(session.failure({ code: 'network_error', message: `the relay closed (${code})` }))
    }
    pending.clear()
    if (stopped) return state('closed', { code, reason })
    if (code === 4001) return end({ code, reason })
    // 1001 (the instance stops), 4002 (token expired), 4008, 4009, a lost network...
    retry({ code, reason })
  }

  function retry(detail) {
    const delay = Math.min(maxBackoffMs, backoffMs * 2 ** attempt++) * (0.5 + Math.random() / 2)
    state('reconnecting', { ...detail, delay })
    later(open, delay)
  }

  function end(detail) {
    stopped = true
    state('closed', detail)
    if (onSessionEnded) onSessionEnded()
  }

  async function open() {
    if (stopped) return
    let token = session.token()
    if (!token || unwelcomed || secondsLeft(token) < 1) {
      try {
        token = await session.refresh()
      } catch (e) {
        // Refused (4xx): the session is over. No answer or a 5xx: try again later.
        if (e.status >= 400 && e.status < 500) end({ code: 4001, reason: e.code })
        else retry({ reason: e.code })
        return
      }
    }
    unwelcomed = true
    stats.connects += 1
    const task = wx.connectSocket({ url, protocols: ['weapp.v1', `bearer.${token}`] })
    socket = task
    task.onMessage(onMessage)
    task.onClose(onClose)
    task.onError(() => {})
  }

  return {
    stats,
    /** Opens the socket; resolves with the server's `welcome`. */
    connect() {
      stopped = false
      welcomed = {}
      const opened = new Promise((resolve) => {
        welcomed.resolve = resolve
      })
      open()
      return opened
    },
    /** `callback(data, room)` for pushes of `topic`; `callback(data, from)` for a room's messages. */
    on(key, callback) {
      if (!handlers.has(key)) handlers.set(key, new Set())
      handlers.get(key).add(callback)
      return () => handlers.get(key).delete(callback)
    },
    /** Joins now and again after every reconnect. */
    join(room) {
      rooms.add(room)
      return request({ type: 'join', room }).catch((e) => {
        rooms.delete(room)
        throw e
      })
    },
    leave(room) {
      rooms.delete(room)
      return request({ type: 'leave', room })
    },
    /** To every member of `room` (you too); resolves once the server took it. */
    publish(room, data) {
      return request({ type: 'publish', room, data })
    },
    ping() {
      return request({ type: 'ping' })
    },
    /** Closes for good (1000); no reconnect. */
    close() {
      stopped = true
      clearTimers()
      if (socket) socket.close({ code: 1000 })
    },
  }
}

module.exports = { createRealtime, secondsLeft }
