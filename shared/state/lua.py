"""Every Lua script the state runs on Redis, in one place (architecture.md §4).

Each script touches the keys of one hash slot only (a model's `{<tenant>:<model>}`, a series'
or a tenant's tag), so it runs unchanged on Redis Cluster, and each is one atomic step: that
atomicity is what the learn log's guarantees rest on. The model store
(shared/state/redis_store.py), the series windows (shared/state/series.py) and the tenant key
records (shared/state/tenant_keys.py) register them from here through their shared
connection (shared/state/redis_connection.py).
"""

from __future__ import annotations

# ----- the model store: snapshot + learn log ------------------------------------------------

# Rows of a stream read, flattened as [id, data, id, data, ...].
TAIL = """
local function tail(log, after, last)
  local out = {}
  if last > after then
    local rows = redis.call('XRANGE', log, tostring(after + 1) .. '-0', '+')
    for _, row in ipairs(rows) do
      out[#out + 1] = row[1]
      out[#out + 1] = row[2][2]
    end
  end
  return out
end
"""

APPEND = (
    TAIL
    + """
-- KEYS: state, log, idempotency; ARGV: uid, after, expected, has_key, body_hash, response,
-- ttl, samples...
local st = redis.call('HMGET', KEYS[1], 'uid', 'seq', 'trimmed')
if not st[1] then return {'missing'} end
local seq, after = tonumber(st[2]), tonumber(ARGV[2])
if st[1] ~= ARGV[1] or after < tonumber(st[3]) then return {'stale'} end
-- the log ends before what the caller applied from it: the store lost acknowledged writes
-- (a failover with STATE_MIN_REPLICAS=0); the caller reloads what the log really holds
if after > seq then return {'stale', 'rewound', seq} end
if ARGV[4] == '1' then
  local seen = redis.call('GET', KEYS[3])
  if seen then
    local rec = cjson.decode(seen)
    if rec[1] ~= ARGV[5] then return {'conflict'} end
    -- written again as it is: a write of this connection, so a WAIT after this script
    -- confirms the replicas hold the first append too (STATE_MIN_REPLICAS)
    redis.call('SET', KEYS[3], seen, 'KEEPTTL')
    return {'replay', rec[2], rec[3], rec[4]}
  end
end
if ARGV[3] == '1' and seq ~= after then
  return {'behind', 0, 0, '', tail(KEYS[2], after, seq)}
end
local missed = tail(KEYS[2], after, seq)
local first = seq + 1
for i = 8, #ARGV do
  seq = seq + 1
  redis.call('XADD', KEYS[2], tostring(seq) .. '-0', 'd', ARGV[i])
end
redis.call('HSET', KEYS[1], 'seq', seq)
if ARGV[4] == '1' then
  redis.call('SET', KEYS[3], cjson.encode({ARGV[5], first, seq, ARGV[6]}), 'EX', ARGV[7])
end
return {'appended', first, seq, '', missed}
"""
)

READ = (
    TAIL
    + """
-- KEYS: state, log; ARGV: uid, after
local st = redis.call('HMGET', KEYS[1], 'uid', 'seq', 'trimmed')
if not st[1] then return {'missing'} end
local after = tonumber(ARGV[2])
if st[1] ~= ARGV[1] or after < tonumber(st[3]) then return {'stale'} end
if after > tonumber(st[2]) then return {'stale', 'rewound', tonumber(st[2])} end
return {'ok', tail(KEYS[2], after, tonumber(st[2]))}
"""
)

LOAD = (
    TAIL
    + """
-- KEYS: state, snapshot, log
local st = redis.call('HMGET', KEYS[1], 'uid', 'record', 'snap_seq', 'seq')
if not st[1] then return false end
local snap_seq = tonumber(st[3])
return {st[1], st[2], snap_seq, redis.call('GET', KEYS[2]), tail(KEYS[3], snap_seq, tonumber(st[4]))}
"""
)

CREATE = """
-- KEYS: state, snapshot, log, incarnation; ARGV: uid, record, blob, incarnation ('' = any), seq
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if ARGV[4] ~= '' then
  -- an incarnation older than the newest one, or equal to a deleted one, is refused
  local inc = redis.call('HMGET', KEYS[4], 'gen', 'deleted')
  local gen, wanted = tonumber(inc[1] or '0'), tonumber(ARGV[4])
  if gen > wanted or (gen == wanted and inc[2] == '1') then return 0 end
  redis.call('HSET', KEYS[4], 'gen', wanted, 'deleted', 0)
end
redis.call('DEL', KEYS[3])
redis.call('SET', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], 'uid', ARGV[1], 'record', ARGV[2], 'seq', ARGV[5],
           'snap_seq', ARGV[5], 'trimmed', ARGV[5])
return 1
"""

DELETE = """
-- KEYS: state, snapshot, log, incarnation; ARGV: incarnation
-- The tombstone outlives the model: a request that read the model before this delete can
-- never install it again (shared/lifecycle.py: recover, activate).
local existed = redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
local gen = math.max(tonumber(redis.call('HGET', KEYS[4], 'gen') or '0'), tonumber(ARGV[1]))
redis.call('HSET', KEYS[4], 'gen', gen, 'deleted', 1)
return existed
"""

EPOCH = """
-- KEYS: the model's epoch; ARGV: a fresh epoch, kept only if its slot has none yet
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
"""

RELEASE = """
-- KEYS: lock; ARGV: owner token: only the owner releases (an expired lock may be another's)
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

SAVE_SNAPSHOT = """
-- KEYS: state, snapshot, log; ARGV: uid, seq, blob
local st = redis.call('HMGET', KEYS[1], 'uid', 'snap_seq', 'seq')
local seq = tonumber(ARGV[2])
if st[1] ~= ARGV[1] or seq <= tonumber(st[2]) or seq > tonumber(st[3]) then return 0 end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], 'snap_seq', seq, 'trimmed', seq)
redis.call('XTRIM', KEYS[3], 'MINID', tostring(seq + 1) .. '-0')
return 1
"""

REPLACE = """
-- KEYS: state, snapshot, log; ARGV: uid, record, blob
local seq = redis.call('HGET', KEYS[1], 'seq')
if not seq then return false end
redis.call('DEL', KEYS[3])
redis.call('SET', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], 'uid', ARGV[1], 'record', ARGV[2], 'snap_seq', seq, 'trimmed', seq)
return tonumber(seq)
"""

# Monitoring (shared/monitoring). The append above runs verbatim inside a function, with the
# outcome taken off the end of its ARGV; when it appends, the outcome is logged right after,
# in the same atomic step, so outcomes are in seq order and never missing or doubled.
APPEND_OUTCOME = (
    """
-- KEYS: state, log, idempotency, outcomes; ARGV: the append's (one sample), then the outcome
local outcome = ARGV[#ARGV]
local ARGV = {unpack(ARGV, 1, #ARGV - 1)}
local function append()
"""
    + APPEND
    + """
end
local result = append()
if result[1] == 'appended' then
  local entry = '[' .. result[3] .. ',' .. ARGV[8] .. ',' .. outcome .. ']'
  result[6] = redis.call('RPUSH', KEYS[4], entry)
end
return result
"""
)

# Group commit (shared/online.py): several predict_learns of one instance, each predicted on
# the state before it, appended in order with their outcomes in one atomic step.
APPEND_OUTCOMES = (
    """
-- KEYS: state, log, idempotency (unused), outcomes; ARGV: n, n outcomes, then the append's
-- (uid, after, expected, has_key = 0, '', '', ttl, n samples)
local n = tonumber(ARGV[1])
local outcomes = {unpack(ARGV, 2, n + 1)}
local ARGV = {unpack(ARGV, n + 2, #ARGV)}
local function append()
"""
    + APPEND
    + """
end
local result = append()
if result[1] == 'appended' then
  local entries = {}
  for i = 1, n do
    entries[i] = '[' .. (result[2] + i - 1) .. ',' .. ARGV[7 + i] .. ',' .. outcomes[i] .. ']'
  end
  result[6] = redis.call('RPUSH', KEYS[4], unpack(entries))
end
return result
"""
)

SAVE_OUTCOMES = """
-- KEYS: state, fold, outcomes; ARGV: generation, consumed, state
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local generation = tonumber(redis.call('HGET', KEYS[2], 'generation') or '0')
if generation ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[2], 'generation', generation + 1, 'state', ARGV[3])
redis.call('LTRIM', KEYS[3], tonumber(ARGV[2]), -1)
return 1
"""

TOUCH_MONITOR = """
-- KEYS: state, monitor; ARGV: n, n (field, value) pairs kept as maxima, then (field, delta)
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = tonumber(ARGV[1])
for i = 2, 2 * n, 2 do
  local old = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '-1e308')
  if tonumber(ARGV[i + 1]) > old then redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
end
for i = 2 * n + 2, #ARGV, 2 do
  redis.call('HINCRBYFLOAT', KEYS[2], ARGV[i], ARGV[i + 1])
end
return 1
"""


# ----- rate limit (shared/ratelimit.py) -------------------------------------------------------

# KEYS: the tenant's bucket; ARGV: interval_us, tolerance_us. Returns µs to wait (0 = allowed).
# Mirrors shared/ratelimit.py gcra_step; integer µs stay exact in Lua doubles (< 2^53).
GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - now - tolerance
if wait > 0 then return wait end
tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
return 0
"""


# ----- series windows ----------------------------------------------------------------------

SERIES_OBSERVE = """
-- KEYS: window, meta, idempotency; ARGV: n_lags, has_key, ttl, body_hash, value, ts, ...
if ARGV[2] == '1' then
  local seen = redis.call('GET', KEYS[3])
  if seen then
    local stored = cjson.decode(seen)
    if stored[1] ~= ARGV[4] then return {'conflict', ''} end
    return {'replay', cjson.encode(stored[2])}
  end
end
local n = tonumber(ARGV[1])
local out = {}
for i = 5, #ARGV, 2 do
  local lags = redis.call('LRANGE', KEYS[1], 0, n - 1)
  redis.call('LPUSH', KEYS[1], ARGV[i])
  redis.call('LTRIM', KEYS[1], 0, n - 1)
  local count = redis.call('HINCRBY', KEYS[2], 'count', 1)
  if ARGV[i + 1] ~= '' then redis.call('HSET', KEYS[2], 'last_ts', ARGV[i + 1]) end
  out[#out + 1] = {lags, count}
end
local encoded = cjson.encode(out)
if ARGV[2] == '1' then
  redis.call('SET', KEYS[3], cjson.encode({ARGV[4], out}), 'EX', ARGV[3])
end
return {'ok', encoded}
"""

SERIES_CLAIM = """
-- KEYS: meta; ARGV: count, total
local start = tonumber(redis.call('HGET', KEYS[1], 'cursor') or '0')
local total = tonumber(ARGV[2])
if start > total then start = total end
local stop = math.min(start + tonumber(ARGV[1]), total)
redis.call('HSET', KEYS[1], 'cursor', stop)
return {start, stop}
"""


# ----- tenant key records ------------------------------------------------------------------

# KEYS: the tenant's hash; ARGV: key id, record, max keys. 1 added, 0 full, -1 id taken.
KEY_RECORD_ADD = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return -1 end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


# ----- kept predictions, for delayed labels (shared/state/predictions.py) -----------------

# Expired ids are swept a few at a time by every keep (and the keys expire with the newest
# keep), so an idle model's kept predictions go entirely after LABEL_TTL_SECONDS.
KEPT_SWEEP = """
local function sweep(kept, pending, labelled, before)
  local old = redis.call('ZRANGEBYSCORE', pending, '-inf', before, 'LIMIT', 0, 4)
  for _, id in ipairs(old) do redis.call('HDEL', kept, id); redis.call('ZREM', pending, id) end
  local done = redis.call('ZRANGEBYSCORE', labelled, '-inf', before, 'LIMIT', 0, 4)
  for _, id in ipairs(done) do redis.call('ZREM', labelled, id) end
end
"""

# keep(kept, pending, labelled, id, value, now, ttl, max_kept): 1 kept, 0 labelled already.
KEEP = (
    KEPT_SWEEP
    + """
local function keep(kept, pending, labelled, id, value, now, ttl, max_kept)
  sweep(kept, pending, labelled, now - ttl)
  local at = redis.call('ZSCORE', labelled, id)
  if at and tonumber(at) + ttl > now then return 0 end
  redis.call('HSET', kept, id, value)
  redis.call('ZADD', pending, now, id)
  local over = redis.call('ZCARD', pending) - max_kept
  if over > 0 then
    local popped = redis.call('ZPOPMIN', pending, over)
    for i = 1, #popped, 2 do redis.call('HDEL', kept, popped[i]) end
  end
  for _, key in ipairs({kept, pending, labelled}) do redis.call('EXPIRE', key, ttl + 1) end
  return 1
end
"""
)

KEEP_PREDICTION = (
    KEEP
    + """
-- KEYS: kept, pending, labelled; ARGV: id, value, now, ttl, max_kept
return keep(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]),
  tonumber(ARGV[5]))
"""
)

# Warm predicts' one round trip, for a group of them made at one (uid, seq) (group commit,
# shared/state/group_commit.py): keep each prediction only if they were made on the whole log
# (the log still ends at `after` in this lineage) — then 1 kept / 0 labelled per item, in
# order; else one answer for all: the tail they missed (or stale / missing), nothing kept.
KEEP_FRESH_PREDICTIONS = (
    TAIL
    + KEEP
    + """
-- KEYS: state, log, kept, pending, labelled; ARGV: uid, after, now, ttl, max_kept, then
-- (id, value) per item
local st = redis.call('HMGET', KEYS[1], 'uid', 'seq', 'trimmed')
if not st[1] then return {'missing'} end
local seq, after = tonumber(st[2]), tonumber(ARGV[2])
if st[1] ~= ARGV[1] or after < tonumber(st[3]) then return {'stale'} end
if after > seq then return {'stale', 'rewound', seq} end
if seq ~= after then return {'behind', tail(KEYS[2], after, seq)} end
local now, ttl, max_kept = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local out = {'ok'}
for i = 6, #ARGV, 2 do
  out[#out + 1] = keep(KEYS[3], KEYS[4], KEYS[5], ARGV[i], ARGV[i + 1], now, ttl, max_kept)
end
return out
"""
)

# One status per id: 'l' labelled, 'm' missing or expired, else the kept value.
FETCH_PREDICTIONS = """
-- KEYS: kept, pending, labelled, idempotency; ARGV: now, ttl, has_key, body_hash, ids...
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
if ARGV[3] == '1' then
  local seen = redis.call('GET', KEYS[4])
  if seen then
    local rec = cjson.decode(seen)
    if rec[1] ~= ARGV[4] then return {'conflict'} end
    return {'replay', rec[2]}
  end
end
local out = {'ok'}
for i = 5, #ARGV do
  local at = redis.call('ZSCORE', KEYS[3], ARGV[i])
  if at and tonumber(at) + ttl > now then
    out[#out + 1] = 'l'
  else
    at = redis.call('ZSCORE', KEYS[2], ARGV[i])
    local value = redis.call('HGET', KEYS[1], ARGV[i])
    if at and value and tonumber(at) + ttl > now then out[#out + 1] = value
    else out[#out + 1] = 'm' end
  end
end
return out
"""

# The learn log's own append (redis_store.APPEND, verbatim, with no Idempotency-Key of its
# own: the label's key is kept beside the kept predictions) runs inside, after every id was
# checked; when it appends, each kept prediction is logged as its sample's outcome and the
# ids become labelled in the same atomic step.
LABEL_PREDICTIONS = (
    """
-- KEYS: state, log, (unused), outcomes, kept, pending, labelled, idempotency
-- ARGV: now, ttl, has_key, body_hash, response, idem_ttl, n, ids (n), tokens (n),
--       outcomes (n), then the append's ARGV (uid, after, 1, 0, '', '', 0, samples (n))
local now, ttl, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[7])
if ARGV[3] == '1' then
  local seen = redis.call('GET', KEYS[8])
  if seen then
    local rec = cjson.decode(seen)
    if rec[1] ~= ARGV[4] then return {'conflict'} end
    redis.call('SET', KEYS[8], seen, 'KEEPTTL')  -- for WAIT, as in APPEND
    return {'replay', 0, 0, rec[2]}
  end
end
local has_key, body_hash, response, idem_ttl = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local ids, tokens, outcomes = {}, {}, {}
for i = 1, n do
  ids[i], tokens[i], outcomes[i] = ARGV[7 + i], ARGV[7 + n + i], ARGV[7 + 2 * n + i]
  local done = redis.call('ZSCORE', KEYS[7], ids[i])
  if done and tonumber(done) + ttl > now then return {'gone', ids[i], 'labelled'} end
  local at = redis.call('ZSCORE', KEYS[6], ids[i])
  local value = redis.call('HGET', KEYS[5], ids[i])
  if not at or not value or tonumber(at) + ttl <= now or string.sub(value, 1, 32) ~= tokens[i] then
    return {'gone', ids[i], 'missing'}
  end
end
local ARGV = {unpack(ARGV, 8 + 3 * n)}
local function append()
"""
    + APPEND
    + """
end
local result = append()
if result[1] == 'appended' then
  local pending = 0
  for i = 1, n do
    local seq = result[2] + i - 1
    pending = redis.call('RPUSH', KEYS[4], '[' .. seq .. ',' .. ARGV[7 + i] .. ',' .. outcomes[i] .. ']')
    local at = redis.call('ZSCORE', KEYS[6], ids[i])
    redis.call('ZREM', KEYS[6], ids[i])
    redis.call('HDEL', KEYS[5], ids[i])
    redis.call('ZADD', KEYS[7], at, ids[i])
  end
  redis.call('EXPIRE', KEYS[7], ttl + 1)
  if has_key == '1' then
    redis.call('SET', KEYS[8], cjson.encode({body_hash, response}), 'EX', idem_ttl)
  end
  result[6] = pending
end
return result
"""
)

PENDING_PREDICTIONS = """
-- KEYS: pending; ARGV: before (now - ttl): what predates it has expired
local oldest = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
return {redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], '+inf'), oldest[2] or ''}
"""
