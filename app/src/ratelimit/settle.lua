-- Settles what a replica still holds for a key: returns leased units it did not use (negative
-- deltas) and charges tokens used beyond their reservation (positive). A TAT never moves below
-- now: a refund cannot bank capacity beyond a full bucket.
-- KEYS[1] request TAT key, KEYS[2] token TAT key
-- ARGV: now_ms, period_ms, request_limit, token_limit (0 = unlimited), request_delta, token_delta
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
