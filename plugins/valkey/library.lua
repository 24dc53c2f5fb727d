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
--   "<offset>" = the payload of each kept message (the last n).
-- The key expires TTL seconds after the channel was last used.
--
--   FCALL fanout_publish 1 fanout:{C} PAYLOAD [SIZE TTL]   -> {epoch, offset}
--   FCALL fanout_top 1 fanout:{C} [SIZE TTL]               -> {epoch, top}
--   FCALL fanout_history 1 fanout:{C} EPOCH AFTER MAX [SIZE TTL]
--       -> {epoch, top, 'ok' | 'epoch' | 'truncated', offset, payload, ...}

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

local function opts(args, i)
  return tonumber(args[i]) or SIZE, tonumber(args[i + 1]) or TTL
end

-- A new epoch: the broker's clock in hex (seconds, microseconds).
local function new_epoch()
  local t = redis.call('TIME')
  return string.format('%x%05x', tonumber(t[1]), tonumber(t[2]))
end

-- Start key k over in a new epoch at offset 0.
local function restart(k, size)
  local e = new_epoch()
  redis.call('DEL', k)
  redis.call('HSET', k, 'e', e, 'o', '0', 'n', num(size))
  return e
end

-- The position of key k (created when missing), its expiry renewed and its
-- history trimmed to size when that shrank.
local function pos(k, size, ttl)
  local m = redis.call('HMGET', k, 'e', 'o', 'n')
  local e, o, n = m[1], tonumber(m[2]), tonumber(m[3])
  if not e or not o then
    e, o = restart(k, size), 0
  elseif n ~= size then
    if n and size < n then
      for i = math.max(o - n + 1, 1), o - size do
        redis.call('HDEL', k, num(i))
      end
    end
    redis.call('HSET', k, 'n', num(size))
  end
  if ttl > 0 then
    redis.call('EXPIRE', k, num(ttl))
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
  local size, ttl = opts(args, 2)
  local e, o = pos(k, size, ttl)
  o = o + 1
  if size > 0 then
    redis.call('HSET', k, 'o', num(o), num(o), args[1])
  else
    redis.call('HSET', k, 'o', num(o))
  end
  if o - size >= 1 then
    redis.call('HDEL', k, num(o - size))
  end
  redis.call(PUB, ch, '\0fo1:' .. e .. ':' .. num(o) .. '\n' .. args[1])
  return {e, o}
end)

redis.register_function('fanout_top', function(keys, args)
  if not channel(keys[1]) then
    return bad_key()
  end
  local size, ttl = opts(args, 1)
  local e, o = pos(keys[1], size, ttl)
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
  local size, ttl = opts(args, 4)
  local e, o = pos(k, size, ttl)
  if want ~= e then
    return {e, o, 'epoch'}
  end
  if after > o then
    -- A position past the top of this epoch was seen: the broker lost
    -- writes (restarted from an older snapshot). Offsets would repeat:
    -- start a new epoch.
    e = restart(k, size)
    return {e, 0, 'epoch'}
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
