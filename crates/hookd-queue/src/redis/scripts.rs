//! The Lua scripts of the Redis queue. Each runs atomically inside Redis, so
//! a task moving between keys is never seen in both, or in neither, and "now"
//! is the server's clock for every node.

use std::sync::LazyLock;

use ::redis::Script;

/// Adds tasks: due ones (by the server's clock) to the stream, in argument
/// order, the others to the delayed set.
/// KEYS: ready, delayed. ARGV: due_ms, json, due_ms, json, ...
pub(super) static PUSH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #ARGV, 2 do
  local due = tonumber(ARGV[i])
  if due <= now then
    redis.call('XADD', KEYS[1], '*', 't', ARGV[i + 1])
  else
    redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i + 1])
  end
end
return 0
",
    )
});

/// Moves due delayed tasks to the stream, earliest first; returns how many ms
/// until the next delayed task is due, or -1 when there is none.
/// KEYS: delayed, ready. ARGV: most to move.
pub(super) static PROMOTE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[1]))
for _, m in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 't', m)
  redis.call('ZREM', KEYS[1], m)
end
local next = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if next[2] == nil then
  return -1
end
return math.max(0, tonumber(next[2]) - now)
",
    )
});

/// Acknowledges and deletes entries in one step, so an entry is never left
/// acknowledged but still in the stream.
/// KEYS: ready. ARGV: group, ids...
pub(super) static ACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
return redis.call('XDEL', KEYS[1], unpack(ARGV, 2))
",
    )
});

/// Resets the idle time of the entries this consumer still owns; returns the
/// ids it no longer owns (acknowledged, reclaimed by another node, or lost).
/// Checking ownership first keeps a slow node from taking back a lease that
/// was already reclaimed.
/// KEYS: ready. ARGV: group, consumer, ids...
pub(super) static REFRESH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local gone = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #p == 1 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  else
    table.insert(gone, ARGV[i])
  end
end
return gone
",
    )
});

/// Tasks waiting: stream entries not leased, plus delayed ones.
/// KEYS: ready, delayed. ARGV: group.
pub(super) static LEN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local leased = redis.call('XPENDING', KEYS[1], ARGV[1])[1]
return math.max(0, redis.call('XLEN', KEYS[1]) - leased) + redis.call('ZCARD', KEYS[2])
",
    )
});

/// Forgets consumers that hold nothing and have been idle a while (every
/// process start adds one). Safe at any idle time: a consumer with no pending
/// entries has no state, and a live one is recreated by its next read.
/// KEYS: ready. ARGV: group, idle ms, own name.
pub(super) static PRUNE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['pending'] == 0 and f['idle'] > tonumber(ARGV[2]) and f['name'] ~= ARGV[3] then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    n = n + 1
  end
end
return n
",
    )
});

/// Shared rate (GCRA, no burst): one request per `interval_ms` per key across
/// every node. Returns 0 and books the slot, or how many ms to wait first.
/// KEYS: rate key. ARGV: interval_ms.
pub(super) static PACE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat > now then return tat - now end
redis.call('SET', KEYS[1], tat + interval, 'PX', interval * 2 + 1000)
return 0
",
    )
});

/// Shared concurrency: takes one of `cap` slots for `holder` until `ttl_ms`
/// from now (so a dead node's slots lapse). Returns 1 if taken, else 0.
/// KEYS: slots key. ARGV: cap, holder, ttl_ms.
pub(super) static TAKE_SLOT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + 1000)
return 1
",
    )
});
