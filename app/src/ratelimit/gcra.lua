-- GCRA (generic cell rate algorithm) for a request limit and a token limit, checked and charged
-- together in one round trip. Each key holds a "theoretical arrival time" (TAT, ms): the moment
-- the bucket would be full again. A limit L per period P spends P/L ms of TAT per unit and allows
-- a burst of at most L, so no two windows' worth can ever pass back to back.
--
-- A replica may also take a lease: `extra` units charged now, beyond what this request needs, that
-- it then spends locally without asking again. Each extra is granted only if it fits; the request
-- itself is decided on its own need alone. Leased units are capacity already charged here, so
-- replicas together can never admit more than a limit allows.
--
-- KEYS[1] request TAT key, KEYS[2] token TAT key
-- ARGV: now_ms, period_ms, request_limit, token_limit (0 = unlimited),
--       request_need, token_need, request_extra, token_extra,
--       token_debt (tokens used beyond earlier reservations: charged whatever this request's fate)
-- Returns: { allowed (1/0), denied_by (0 none, 1 requests, 2 tokens),
--            req_remaining, req_reset_ms, tok_remaining, tok_reset_ms, retry_after_ms,
--            request_extra_granted, token_extra_granted }
local now = tonumber(ARGV[1])
local period = tonumber(ARGV[2])

local function load(key, limit)
  if limit <= 0 then return nil end
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  return { key = key, limit = limit, interval = period / limit, tat = tat, dirty = false }
end

local function fits(s, units)
  return s == nil or (s.tat + units * s.interval - now) <= period
end

local function charge(s, units)
  if s and units > 0 then
    s.tat = s.tat + units * s.interval
    s.dirty = true
  end
end

local req = load(KEYS[1], tonumber(ARGV[3]))
local tok = load(KEYS[2], tonumber(ARGV[4]))
local req_need, tok_need = tonumber(ARGV[5]), tonumber(ARGV[6])
charge(tok, tonumber(ARGV[9]))

local denied, retry = 0, 0
if not fits(req, req_need) then
  denied = 1
  retry = req.tat + req_need * req.interval - period - now
elseif not fits(tok, tok_need) then
  denied = 2
  retry = tok.tat + tok_need * tok.interval - period - now
end

local req_extra, tok_extra = 0, 0
if denied == 0 then
  if req and fits(req, req_need + tonumber(ARGV[7])) then req_extra = tonumber(ARGV[7]) end
  if tok and fits(tok, tok_need + tonumber(ARGV[8])) then tok_extra = tonumber(ARGV[8]) end
  charge(req, req_need + req_extra)
  charge(tok, tok_need + tok_extra)
end

local function report(s)
  if not s then return -1, 0 end
  -- %.17g, not tostring (%.14g): at 13-digit ms times that keeps 0.1 ms, and a huge limit's
  -- charges are far smaller (tpm 1e9: 0.00006 ms a token); 17 digits round-trip a double.
  if s.dirty then
    redis.call('SET', s.key, string.format('%.17g', s.tat), 'PX', math.ceil(s.tat - now) + 1000)
  end
  local remaining = math.floor((now + period - s.tat) / s.interval)
  if remaining > s.limit then remaining = s.limit end
  if remaining < 0 then remaining = 0 end
  return remaining, math.ceil(s.tat - now)
end

local rr, rreset = report(req)
local tr, treset = report(tok)
return { denied == 0 and 1 or 0, denied, rr, rreset, tr, treset, math.ceil(retry), req_extra, tok_extra }
