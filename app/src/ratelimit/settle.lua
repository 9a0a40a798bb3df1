-- Settles what a replica still holds for a key: returns leased units it did not use (negative
-- deltas) and charges tokens used beyond their reservation (positive). A TAT never moves below
-- now: a refund cannot bank capacity beyond a full bucket.
--
-- Each settlement runs at most once: a reply lost to a command timeout or a reconnect does not
-- tell whether it ran, so the replica sends it again under the same id, and a refund applied
-- twice would admit beyond the limit. The id's mark (KEYS[3]) outlives the replica's retries.
-- KEYS[1] request TAT key, KEYS[2] token TAT key, KEYS[3] this settlement's mark
-- ARGV: now_ms, period_ms, request_limit, token_limit (0 = unlimited), request_delta, token_delta,
--       mark_ttl_ms
-- Returns 1 when applied now, 0 when it had been already.
if not redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[7]) then return 0 end

local now = tonumber(ARGV[1])
local period = tonumber(ARGV[2])

local function move(key, limit, delta)
  if limit <= 0 or delta == 0 then return end
  local tat = tonumber(redis.call('GET', key))
  if not tat then
    if delta < 0 then return end
    tat = now
  end
  if tat < now then tat = now end
  local new_tat = tat + delta * (period / limit)
  if new_tat <= now then
    redis.call('DEL', key)
  else
    -- %.17g: tostring's %.14g would round a small refund or debt away (see gcra.lua).
    redis.call('SET', key, string.format('%.17g', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
  end
end

move(KEYS[1], tonumber(ARGV[3]), tonumber(ARGV[5]))
move(KEYS[2], tonumber(ARGV[4]), tonumber(ARGV[6]))
return 1
