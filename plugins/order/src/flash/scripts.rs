//! The Redis side of a flash sale: one product's keys, all under one hash tag so a
//! script may use them together on a cluster, and the three scripts that change
//! them. Each script runs atomically, so Redis never shows a reservation half made.
//!
//! - `stock`: units not reserved, as the last sync computed them minus the
//!   reservations since (a string integer);
//! - `users`: units each buyer holds in the sale (hash user → units);
//! - `keys`: the answer of each `Idempotency-Key` (hash `user:key` → [`KeyRecord`]);
//! - `held`: reservations not yet written to the database (hash order → [`Reserved`]);
//! - `queue`: the same reservations as a stream, read by the writers' consumer group:
//!   an entry per reservation call, up to [`PER_ENTRY`] of its reservations in its
//!   `p` field, one a line.
//!
//! [`KeyRecord`]: super::reservation::KeyRecord
//! [`Reserved`]: super::reservation::Reserved

use std::sync::LazyLock;

use redis::Script;

/// The consumer group every instance's writer reads the queue in.
pub(crate) const WRITERS: &str = "writers";

/// Most reservations in one queue entry (the reservation script's `PER_ENTRY`).
pub(crate) const PER_ENTRY: usize = 32;

/// The Redis keys of one product's sale.
#[derive(Debug, Clone)]
pub(crate) struct SaleKeys {
    pub stock: String,
    pub users: String,
    pub keys: String,
    pub held: String,
    pub queue: String,
}

impl SaleKeys {
    /// The keys of `product_id`'s sale under the app's `redis.key_prefix`.
    pub(crate) fn new(prefix: &str, product_id: i64) -> SaleKeys {
        let base = format!("{prefix}order:fs:{{{product_id}}}:");
        SaleKeys {
            stock: format!("{base}stock"),
            users: format!("{base}users"),
            keys: format!("{base}keys"),
            held: format!("{base}held"),
            queue: format!("{base}queue"),
        }
    }
}

/// Reserves units for a batch of orders, one after the other. KEYS: stock users
/// keys held queue. ARGV: most queued, `n`, then for each order: user, qty,
/// per-user limit, key field, order id, key record, payload. Answers
/// `{outcome, detail}` for each: `replay` + the key's record; `unloaded` (no
/// counter: a sync must run first); `sold_out` + units left; `busy` (queue full);
/// `limit` + units the user holds; `reserved` + units left.
///
/// Each order sees what the ones before it in the batch did, as separate calls in
/// that order would; but Redis is read once per batch (the counter, the queue's
/// length, the users' units and the keys, two of them in one `HMGET` each) and
/// written once per batch, the reservations queued [`PER_ENTRY`] to a stream entry:
/// a handful of commands a batch instead of nine an order.
pub(crate) static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    let text = r#"
local most, n = tonumber(ARGV[1]), tonumber(ARGV[2])
local users, fields = {}, {}
for i = 0, n - 1 do
  users[i + 1], fields[i + 1] = ARGV[3 + i * 7], ARGV[6 + i * 7]
end
local priors = redis.call('HMGET', KEYS[3], unpack(fields))
local holds = redis.call('HMGET', KEYS[2], unpack(users))
local stock = redis.call('GET', KEYS[1])
stock = stock and tonumber(stock)
local queued = redis.call('HLEN', KEYS[4])
-- What this batch changed: units by user, records by key field.
local units, records = {}, {}
local taken, key_args, held_args, queued_payloads, out = 0, {}, {}, {}, {}
for i = 0, n - 1 do
  local a = 2 + i * 7
  local user, qty, limit = ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local field, id, record, payload = ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7]
  local outcome, detail = 'reserved', ''
  local prior = records[field] or priors[i + 1]
  if prior then
    outcome, detail = 'replay', prior
  elseif not stock then
    outcome = 'unloaded'
  elseif stock < qty then
    outcome, detail = 'sold_out', tostring(stock)
  elseif queued >= most then
    outcome = 'busy'
  else
    local held = units[user] or tonumber(holds[i + 1] or '0')
    if held + qty > limit then
      outcome, detail = 'limit', tostring(held)
    else
      stock, taken, queued = stock - qty, taken + qty, queued + 1
      units[user], records[field] = held + qty, record
      detail = tostring(stock)
      key_args[#key_args + 1], key_args[#key_args + 2] = field, record
      held_args[#held_args + 1], held_args[#held_args + 2] = id, payload
      queued_payloads[#queued_payloads + 1] = payload
    end
  end
  out[#out + 1] = outcome
  out[#out + 1] = detail
end
if taken > 0 then
  local user_args = {}
  for user, held in pairs(units) do
    user_args[#user_args + 1], user_args[#user_args + 2] = user, held
  end
  redis.call('DECRBY', KEYS[1], taken)
  redis.call('HSET', KEYS[2], unpack(user_args))
  redis.call('HSET', KEYS[3], unpack(key_args))
  redis.call('HSET', KEYS[4], unpack(held_args))
  local PER_ENTRY = {per_entry}
  for first = 1, #queued_payloads, PER_ENTRY do
    local last = math.min(first + PER_ENTRY - 1, #queued_payloads)
    redis.call('XADD', KEYS[5], '*', 'p', table.concat(queued_payloads, '\n', first, last))
  end
end
return out
"#;
    Script::new(&text.replace("{per_entry}", &PER_ENTRY.to_string()))
});

/// Forgets reservations written to the database. KEYS: users held queue. ARGV: the
/// group, `n`, `m`, `n` stream entry ids, `m` order ids, then `user, units` pairs of
/// orders the database refused (their units go back to the user; the stock counter
/// is left to the next sync, as the database had fewer units than Redis thought).
///
/// The entries are acknowledged and deleted, and the orders dropped from `held`,
/// many to a command: three commands a batch, not three an order.
pub(crate) static SETTLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local n, m = tonumber(ARGV[2]), tonumber(ARGV[3])
-- ARGV[first..last] as arguments, in slices: unpack is bounded by Lua's C stack.
local function in_slices(command, key, group, first, last)
  while first <= last do
    local upto = math.min(first + 999, last)
    if group then
      redis.call(command, key, group, unpack(ARGV, first, upto))
    else
      redis.call(command, key, unpack(ARGV, first, upto))
    end
    first = upto + 1
  end
end
in_slices('XACK', KEYS[3], ARGV[1], 4, 3 + n)
in_slices('XDEL', KEYS[3], nil, 4, 3 + n)
in_slices('HDEL', KEYS[2], nil, 4 + n, 3 + n + m)
local i = 4 + n + m
while i < #ARGV do
  if redis.call('HINCRBY', KEYS[1], ARGV[i], -tonumber(ARGV[i + 1])) <= 0 then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
  i = i + 2
end
return n
"#,
    )
});

/// Sets the counters from the database's figures, taken under the stock row's lock
/// so no write of the product commits meanwhile. KEYS: stock users held. ARGV: units
/// on hand in the database, `n`, `n` order ids already written (dropped from
/// `held`), `all` or `some`, then `user, units` pairs: each buyer's units in the
/// database's orders of the sale (`all`: every buyer; the others are forgotten).
/// Reservations still held are added to both figures. Answers the units left.
pub(crate) static SYNC: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local n = tonumber(ARGV[2])
for i = 1, n do redis.call('HDEL', KEYS[3], ARGV[2 + i]) end
local total = 0
local held = {}
for _, record in ipairs(redis.call('HVALS', KEYS[3])) do
  local user, qty = string.match(record, '^%d+:(%d+):(%d+):')
  if user then
    total = total + tonumber(qty)
    held[user] = (held[user] or 0) + tonumber(qty)
  end
end
local left = tonumber(ARGV[1]) - total
if left < 0 then left = 0 end
redis.call('SET', KEYS[1], left)
if ARGV[3 + n] == 'all' then
  redis.call('DEL', KEYS[2])
  for user, qty in pairs(held) do redis.call('HSET', KEYS[2], user, qty) end
end
local i = 4 + n
while i < #ARGV do
  local units = tonumber(ARGV[i + 1]) + (held[ARGV[i]] or 0)
  if units > 0 then
    redis.call('HSET', KEYS[2], ARGV[i], units)
  else
    redis.call('HDEL', KEYS[2], ARGV[i])
  end
  i = i + 2
end
return left
"#,
    )
});

/// Forgets an ended sale's counters and key records, unless reservations are still
/// held (not yet written). KEYS: stock users keys held. Answers the keys deleted.
/// The queue and its group stay: empty once written, and a writer reading an
/// ended sale's queue would make them again.
pub(crate) static FORGET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HLEN', KEYS[4]) > 0 then return 0 end
return redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
"#,
    )
});
