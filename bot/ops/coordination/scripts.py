"""The Lua scripts Redis runs atomically for the coordination: one round trip each, Redis's clock.

Every time is Redis's own (`TIME`, in ms), so the processes' clocks need not agree.
"""

from __future__ import annotations

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# Requests answered since this process's last call: ARGV from `first` on holds pairs of a slot
# and the ms since its answer was read. Each is then held until one second after its answer, as
# one process's budget holds it: Discord counted it somewhere between leaving and that answer,
# so no later request can land in the same Discord second, whatever the latency. A place whose
# hold lapsed before its answer came is put back for the rest of that second.
_ANSWERED = """
for i = first, #ARGV - 1, 2 do
  local free_at = now - tonumber(ARGV[i + 1]) + 1000
  if free_at > now then
    redis.call('ZADD', KEYS[1], free_at, ARGV[i])
  else
    redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
"""

# Only answers to report (when no write of this process comes soon to carry them).
# KEYS: window. ARGV: answered pairs.
ANSWERED = _NOW + "local first = 1" + _ANSWERED + "return 1"

# KEYS: window (zset: slot -> expiry), queue (zset: waiting final/first part -> asked at), hold
# (a global 429's key). ARGV: slot id, 1 for a final or first part, ms it has waited already,
# window size, what edits may fill, ms a slot is held. Returns {0, count} when the slot is taken,
# else {ms to wait before asking again, count}. Finals and first parts take free slots oldest
# first across processes; edits only while the window (with the finals waiting) is under their
# part of it, as in one process's budget.
TAKE = (
    _NOW
    + "local first = 7"
    + _ANSWERED
    + """
local id, first = ARGV[1], ARGV[2] == '1'
local age, size, edits, hold = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 30000)
if first then
  redis.call('ZADD', KEYS[2], 'NX', now - age, id)
  redis.call('PEXPIRE', KEYS[2], 60000)
end
local count = redis.call('ZCARD', KEYS[1])
local held = redis.call('PTTL', KEYS[3])
if held > 0 then return {held, count} end
local over
if first then
  over = count + redis.call('ZRANK', KEYS[2], id) - size
else
  over = count + redis.call('ZCARD', KEYS[2]) - edits
end
if over < 0 then
  redis.call('ZADD', KEYS[1], now + hold, id)
  redis.call('PEXPIRE', KEYS[1], hold * 2)
  if first then redis.call('ZREM', KEYS[2], id) end
  return {0, count + 1}
end
local slot = redis.call('ZRANGE', KEYS[1], over, over, 'WITHSCORES')
if slot[2] then return {math.max(tonumber(slot[2]) - now, 1), count} end
return {math.max(math.floor(hold / 4), 1), count}
"""
)

# A request that did not wait for a slot (interactions, reads, notices) still fills one.
# KEYS: window. ARGV: slot id, ms held, then answered pairs. Returns the count.
NOTE = (
    _NOW
    + "local first = 3"
    + _ANSWERED
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return redis.call('ZCARD', KEYS[1])
"""
)

# A global 429: every process holds until it lifts. KEYS: hold. ARGV: ms.
HOLD = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', tonumber(ARGV[1]))
end
return 1
"""

# KEYS: the user's leases (zset: lease -> expiry), recent turns (zset: lease -> asked at).
# ARGV: lease id, concurrent turns allowed, turns per minute, ms a lease lasts unrenewed.
# Returns {0} admitted, {1} busy, {2, seconds} too fast.
ADMIT = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 60000)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return {1} end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return {2, math.floor((tonumber(oldest[2]) + 60000 - now) / 1000) + 1}
end
local lease = tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease * 2)
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('PEXPIRE', KEYS[2], 61000)
return {0}
"""
)

# Renews this process's running leases. KEYS: lease sets; ARGV: ms, then one lease id per key.
RENEW = (
    _NOW
    + """
local lease = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', now + lease, ARGV[i + 1])
  redis.call('PEXPIRE', key, lease * 2)
end
return #KEYS
"""
)

# Usage in 10-minute buckets kept a day. KEYS: the user's usage hash. ARGV: tokens, USD (or 0).
ADD_USAGE = (
    _NOW
    + """
local bucket = math.floor(now / 600000)
redis.call('HINCRBY', KEYS[1], 't:' .. bucket, tonumber(ARGV[1]))
redis.call('HINCRBYFLOAT', KEYS[1], 'c:' .. bucket, ARGV[2])
redis.call('PEXPIRE', KEYS[1], 90000000)
return 1
"""
)

# The last 24 hours' usage (144 buckets and the running one); older buckets are dropped.
# KEYS: the user's usage hash. Returns {tokens, USD as a string}.
USAGE = (
    _NOW
    + """
local first = math.floor(now / 600000) - 144
local fields = redis.call('HGETALL', KEYS[1])
local tokens, cost = 0, 0
for i = 1, #fields, 2 do
  local kind, bucket = string.match(fields[i], '^(%a):(%d+)$')
  if tonumber(bucket) < first then
    redis.call('HDEL', KEYS[1], fields[i])
  elseif kind == 't' then
    tokens = tokens + tonumber(fields[i + 1])
  else
    cost = cost + tonumber(fields[i + 1])
  end
end
return {tokens, tostring(cost)}
"""
)
