-- GCRA (generic cell rate algorithm) for a request limit and a token limit, checked and charged
-- together in one round trip. Each key holds a "theoretical arrival time" (TAT, ms): the moment
-- the bucket would be full again. A limit L per period P spends P/L ms of TAT per unit and allows
-- a burst of at most L, so no two windows' worth can ever pass back to back.
--
-- KEYS[1] request TAT key, KEYS[2] token TAT key
-- ARGV: now_ms, period_ms, request_limit, token_limit, token_cost   (a limit of 0 = unlimited)
-- Returns: { allowed (1/0), denied_by (0 none, 1 requests, 2 tokens),
--            req_remaining, req_reset_ms, tok_remaining, tok_reset_ms, retry_after_ms }
local now = tonumber(ARGV[1])
local period = tonumber(ARGV[2])

local function state(key, limit, cost)
  if limit <= 0 then return nil end
  local interval = period / limit
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local new_tat = tat + cost * interval
  local allowed = (new_tat - now) <= period
  return { interval = interval, tat = tat, new_tat = new_tat, allowed = allowed, limit = limit }
end

local req = state(KEYS[1], tonumber(ARGV[3]), 1)
local tok = state(KEYS[2], tonumber(ARGV[4]), tonumber(ARGV[5]))

local denied = 0
local retry = 0
if req and not req.allowed then
  denied = 1
  retry = req.new_tat - period - now
elseif tok and not tok.allowed then
  denied = 2
  retry = tok.new_tat - period - now
end

local function report(s, charged)
  if not s then return -1, 0 end
  local tat = charged and s.new_tat or s.tat
  local remaining = math.floor((now + period - tat) / s.interval)
  if remaining > s.limit then remaining = s.limit end
  if remaining < 0 then remaining = 0 end
  return remaining, math.ceil(tat - now)
end

local charged = denied == 0
if charged then
  if req then redis.call('SET', KEYS[1], tostring(req.new_tat), 'PX', math.ceil(req.new_tat - now) + 1000) end
  if tok then redis.call('SET', KEYS[2], tostring(tok.new_tat), 'PX', math.ceil(tok.new_tat - now) + 1000) end
end
local rr, rreset = report(req, charged)
local tr, treset = report(tok, charged)
return { charged and 1 or 0, denied, rr, rreset, tr, treset, math.ceil(retry) }
