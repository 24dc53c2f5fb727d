/*
 * library.c — the text of the "fanout" Redis Functions library, the
 * broker-side half of positioned channels (see history.c and
 * fanout-valkey(5) for what it stores and returns). Shared by the valkey
 * backend, which loads it on every connect, and fanout-cli push, which
 * loads it when it finds it missing. Pure; allocates only the text it
 * returns.
 */
#include "library.h"

#include <stdio.h>
#include <stdlib.h>

/*
 * The library. %s: the publish command (PUBLISH, or SPUBLISH in cluster
 * mode); %lld x3: this instance's history_size, history_ttl_s and
 * history_meta_ttl_s, the defaults of a call that does not pass them (a
 * third-party publisher: FCALL fanout_publish 1 CHANNEL PAYLOAD).
 */
static const char lib_fmt[] =
    "#!lua name=fanout\n"
    "-- fanout positioned channels: see fanout-valkey(5). Loaded by fanoutd.\n"
    "--   FCALL fanout_publish 1 CHANNEL PAYLOAD [SIZE TTL_S META_TTL_S] -> {epoch, offset}\n"
    "--   FCALL fanout_top 1 CHANNEL [SIZE TTL_S META_TTL_S] -> {epoch, top}\n"
    "--   FCALL fanout_history 1 CHANNEL EPOCH AFTER MAX [SIZE TTL_S META_TTL_S]\n"
    "--     -> {epoch, top, 'ok'|'epoch'|'truncated', offset, payload, ...}\n"
    "local PUB = '%s'\n"
    "local SIZE, TTL, MTTL = %lld, %lld, %lld\n"
    "local function num(n) return string.format('%%d', n) end\n"
    "local function bad(ch)\n"
    "  if type(ch) ~= 'string' or ch == '' or string.find(ch, '[{}]') then\n"
    "    return redis.error_reply('ERR fanout: the channel (KEYS[1]) must be non-empty, without { "
    "or }')\n"
    "  end\n"
    "end\n"
    "local function opts(args, i)\n"
    "  return tonumber(args[i]) or SIZE, tonumber(args[i + 1]) or TTL, tonumber(args[i + 2]) or "
    "MTTL\n"
    "end\n"
    "local function new_epoch()\n"
    "  local t = redis.call('TIME')\n"
    "  return string.format('%%x%%05x', tonumber(t[1]), tonumber(t[2]))\n"
    "end\n"
    "local function pos(ch, mttl)\n"
    "  local mk, hk = 'fanout:m:{' .. ch .. '}', 'fanout:h:{' .. ch .. '}'\n"
    "  local m = redis.call('HMGET', mk, 'e', 'o')\n"
    "  local e, o = m[1], tonumber(m[2])\n"
    "  if not e or not o then\n"
    "    e, o = new_epoch(), 0\n"
    "    redis.call('DEL', hk)\n"
    "    redis.call('HSET', mk, 'e', e, 'o', '0')\n"
    "  end\n"
    "  if mttl > 0 then redis.call('EXPIRE', mk, num(mttl)) else redis.call('PERSIST', mk) end\n"
    "  return mk, hk, e, o\n"
    "end\n"
    "redis.register_function('fanout_publish', function(keys, args)\n"
    "  local ch = keys[1]\n"
    "  local err = bad(ch)\n"
    "  if err then return err end\n"
    "  if type(args[1]) ~= 'string' then\n"
    "    return redis.error_reply('ERR fanout: usage: FCALL fanout_publish 1 CHANNEL PAYLOAD')\n"
    "  end\n"
    "  local size, ttl, mttl = opts(args, 2)\n"
    "  local mk, hk, e, o = pos(ch, mttl)\n"
    "  o = o + 1\n"
    "  redis.call('HSET', mk, 'o', num(o))\n"
    "  if size > 0 then\n"
    "    redis.call('XADD', hk, 'MAXLEN', num(size), num(o) .. '-0', 'd', args[1])\n"
    "    if ttl > 0 then redis.call('EXPIRE', hk, num(ttl)) else redis.call('PERSIST', hk) end\n"
    "  end\n"
    "  redis.call(PUB, ch, '\\0fo1:' .. e .. ':' .. num(o) .. '\\n' .. args[1])\n"
    "  return {e, o}\n"
    "end)\n"
    "redis.register_function('fanout_top', function(keys, args)\n"
    "  local err = bad(keys[1])\n"
    "  if err then return err end\n"
    "  local size, ttl, mttl = opts(args, 1)\n"
    "  local mk, hk, e, o = pos(keys[1], mttl)\n"
    "  return {e, o}\n"
    "end)\n"
    "redis.register_function('fanout_history', function(keys, args)\n"
    "  local err = bad(keys[1])\n"
    "  if err then return err end\n"
    "  local want, after, max = args[1], tonumber(args[2]), tonumber(args[3])\n"
    "  if not want or not after or not max then\n"
    "    return redis.error_reply('ERR fanout: usage: FCALL fanout_history 1 CHANNEL EPOCH AFTER "
    "MAX')\n"
    "  end\n"
    "  local size, ttl, mttl = opts(args, 4)\n"
    "  local mk, hk, e, o = pos(keys[1], mttl)\n"
    "  if want ~= e then return {e, o, 'epoch'} end\n"
    "  if after > o then\n"
    "    -- A position past the top was seen: the broker lost writes (a restart\n"
    "    -- from an older snapshot). Offsets would repeat: start a new epoch.\n"
    "    e, o = new_epoch(), 0\n"
    "    redis.call('DEL', hk)\n"
    "    redis.call('HSET', mk, 'e', e, 'o', '0')\n"
    "    return {e, o, 'epoch'}\n"
    "  end\n"
    "  if after == o or max <= 0 then return {e, o, 'ok'} end\n"
    "  local first = num(after + 1) .. '-0'\n"
    "  local r = redis.call('XRANGE', hk, first, '+', 'COUNT', num(max))\n"
    "  if #r == 0 or r[1][1] ~= first then return {e, o, 'truncated'} end\n"
    "  local out = {e, o, 'ok'}\n"
    "  for _, ent in ipairs(r) do\n"
    "    out[#out + 1] = tonumber(string.match(ent[1], '^(%%d+)'))\n"
    "    out[#out + 1] = ent[2][2]\n"
    "  end\n"
    "  return out\n"
    "end)\n";

char *vk_library_text(const char *pub_cmd, long long size, long long ttl_s, long long meta_ttl_s)
{
	int n = snprintf(NULL, 0, lib_fmt, pub_cmd, size, ttl_s, meta_ttl_s);
	char *t = n > 0 ? malloc((size_t)n + 1) : NULL;

	if (t)
		snprintf(t, (size_t)n + 1, lib_fmt, pub_cmd, size, ttl_s, meta_ttl_s);
	return t;
}
