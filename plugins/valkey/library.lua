-- library.lua — the "fanout" Redis Functions library: positioned channels
-- for fanoutd's valkey backend (fanout-valkey(5)). The backend loads it on
-- every connect with FUNCTION LOAD REPLACE, prepending two lines:
--   #!lua name=fanout
--   local PUB, SIZE, TTL = 'PUBLISH' (or 'SPUBLISH' in a cluster),
--                          its history_size, its history_ttl_s
-- (SIZE and TTL are the defaults of a call that does not pass them).
--
-- Channel C (the broker's name, channel_prefix included) keeps its position
-- and history in ONE hash, KEYS[1] = "fanout:{C}" (hash tag C: the key lives
-- in the channel's own cluster slot, and being the one declared key makes
-- every call safe while a slot migrates):
--   e = the epoch, o = the top offset, n = the history size in force,
--   "<offset>" = the payload of each kept message.
-- The history is the last n payloads, (o - n, o]. Older ones are deleted in
-- batches of step(n) (below): the publish of offset o deletes
-- o - n - step(n) + 1 .. o - n whenever o - n is a multiple of step(n), so
-- up to step(n) - 1 more payloads may linger below the history, stored but
-- never answered. (A hash written by an older library that deleted one per
-- publish fits the same scheme.)
-- The key expires TTL seconds after the channel was last used.
--
--   FCALL fanout_publish 1 fanout:{C} PAYLOAD [SIZE TTL]   -> {epoch, offset}
--   FCALL fanout_top 1 fanout:{C} [SIZE TTL]               -> {epoch, top}
--   FCALL fanout_history 1 fanout:{C} EPOCH AFTER MAX [SIZE TTL]
--       -> {epoch, top, 'ok' | 'epoch' | 'truncated', offset, payload, ...}
--
-- Cost (redis 7.0, callgrind): each redis.call runs a command through the
-- server (~7-10k instructions with its reply turned back into Lua), so a
-- publish makes four (HMGET, HSET, EXPIRE, PUBLISH) plus an HDEL every
-- step(n) publishes; string.format and string-to-number conversions cost
-- ~1-2k each, so each number is formatted or parsed at most once per call
-- and the SIZE/TTL arguments' conversions are remembered between calls.

local function num(n)
  return string.format('%d', n)
end

-- The channel of key "fanout:{C}", or nil.
local function channel(key)
  if type(key) ~= 'string' then
    return nil
  end
  return string.match(key, '^fanout:{([^{}]+)}$')
end

local function bad_key()
  return redis.error_reply('ERR fanout: KEYS[1] must be fanout:{CHANNEL}')
end

-- The SIZE and TTL arguments last seen and what they mean: {arg, number,
-- string} each (callers pass the same ones every time, and Lua compares
-- strings by address). The tables equal no argument until the first call
-- (string.format cannot run while the library loads).
local size_memo, ttl_memo = {{}, SIZE, nil}, {{}, TTL, nil}

local function memo(m, arg, default)
  if arg ~= m[1] then
    local v = tonumber(arg) or default
    m[1], m[2], m[3] = arg, v, num(v)
  end
  return m[2], m[3]
end

-- A call's SIZE and TTL (args[i], args[i + 1], or the defaults), each as a
-- number and as its decimal string: size, size_s, ttl, ttl_s.
local function opts(args, i)
  local size, size_s = memo(size_memo, args[i], SIZE)
  local ttl, ttl_s = memo(ttl_memo, args[i + 1], TTL)
  return size, size_s, ttl, ttl_s
end

-- Old payloads are deleted this many at a time: 1/16 of the history, at
-- most 32, at least 1.
local function step(size)
  return math.max(1, math.min(32, math.floor(size / 16)))
end

-- HDEL the payloads lo..hi (at most 1000 fields per command).
local function drop(k, lo, hi)
  lo = math.max(lo, 1)
  while lo <= hi do
    local fields = {}
    for i = lo, math.min(hi, lo + 999) do
      fields[#fields + 1] = num(i)
    end
    redis.call('HDEL', k, unpack(fields))
    lo = lo + #fields
  end
end

-- A new epoch: the broker's clock in hex (seconds, microseconds).
local function new_epoch()
  local t = redis.call('TIME')
  return string.format('%x%05x', tonumber(t[1]), tonumber(t[2]))
end

-- Start key k over in a new epoch at offset 0.
local function restart(k, size_s)
  local e = new_epoch()
  redis.call('DEL', k)
  redis.call('HSET', k, 'e', e, 'o', '0', 'n', size_s)
  return e
end

-- The position of key k (created when missing), its expiry renewed (ttl_s:
-- ttl as a string) and, when the history size changed, what falls outside
-- the new one deleted at once (what the old size's batches left too).
local function pos(k, size, size_s, ttl, ttl_s)
  local m = redis.call('HMGET', k, 'e', 'o', 'n')
  local e, o = m[1], tonumber(m[2])
  if not e or not o then
    e, o = restart(k, size_s), 0
  elseif m[3] ~= size_s then
    local n = tonumber(m[3]) or size
    drop(k, o - n - step(n) + 1, o - size)
    redis.call('HSET', k, 'n', size_s)
  end
  if ttl > 0 then
    redis.call('EXPIRE', k, ttl_s)
  else
    redis.call('PERSIST', k)
  end
  return e, o
end

redis.register_function('fanout_publish', function(keys, args)
  local k = keys[1]
  local ch = channel(k)
  if not ch then
    return bad_key()
  end
  if type(args[1]) ~= 'string' then
    return redis.error_reply('ERR fanout: usage: FCALL fanout_publish 1 fanout:{CHANNEL} PAYLOAD')
  end
  local size, size_s, ttl, ttl_s = opts(args, 2)
  local e, o = pos(k, size, size_s, ttl, ttl_s)
  o = o + 1
  local so = num(o)
  if size > 0 then
    redis.call('HSET', k, 'o', so, so, args[1])
    local d, b = o - size, step(size)
    if d >= 1 and d % b == 0 then
      drop(k, d - b + 1, d)
    end
  else
    redis.call('HSET', k, 'o', so)
  end
  redis.call(PUB, ch, '\0fo1:' .. e .. ':' .. so .. '\n' .. args[1])
  return {e, o}
end)

redis.register_function('fanout_top', function(keys, args)
  if not channel(keys[1]) then
    return bad_key()
  end
  local e, o = pos(keys[1], opts(args, 1))
  return {e, o}
end)

redis.register_function('fanout_history', function(keys, args)
  local k = keys[1]
  if not channel(k) then
    return bad_key()
  end
  local want, after, max = args[1], tonumber(args[2]), tonumber(args[3])
  if not want or not after or not max or after < 0 then
    return redis.error_reply('ERR fanout: usage: FCALL fanout_history 1 fanout:{CHANNEL} EPOCH AFTER MAX')
  end
  local size, size_s, ttl, ttl_s = opts(args, 4)
  local e, o = pos(k, size, size_s, ttl, ttl_s)
  if want ~= e then
    return {e, o, 'epoch'}
  end
  if after > o then
    -- A position past the top of this epoch was seen: the broker lost
    -- writes (restarted from an older snapshot). Offsets would repeat:
    -- start a new epoch.
    e = restart(k, size_s)
    return {e, 0, 'epoch'}
  end
  if after < o - size then
    -- Older than the history (a payload waiting for its batch is not
    -- answered).
    return {e, o, 'truncated'}
  end
  local last = math.min(o, after + max)
  local out = {e, o, 'ok'}
  local i = after + 1
  while i <= last do
    local fields = {}
    for j = i, math.min(last, i + 999) do
      fields[#fields + 1] = num(j)
    end
    local vals = redis.call('HMGET', k, unpack(fields))
    for j = 1, #fields do
      if not vals[j] then
        -- Trimmed (or expired): history no longer reaches back that far.
        return {e, o, 'truncated'}
      end
      out[#out + 1] = i + j - 1
      out[#out + 1] = vals[j]
    end
    i = i + #fields
  end
  return out
end)
