-- Reconciles a token reservation with the real usage: moves the token TAT by (actual - reserved)
-- units, never below now (a refund cannot bank capacity beyond a full bucket).
-- KEYS[1] token TAT key; ARGV: now_ms, period_ms, token_limit, delta_tokens
local now = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
if limit <= 0 then return 0 end
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat then
  if tonumber(ARGV[4]) <= 0 then return 0 end
  tat = now
end
local new_tat = tat + tonumber(ARGV[4]) * (period / limit)
if new_tat <= now then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return 1
