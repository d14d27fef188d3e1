import { createHash } from 'node:crypto';
import type { RateLimitAlgorithm } from '@breakwater/core';

/**
 * Codes of the algorithms in the script's ARGV[1] and in the stored record.
 */
export const ALGORITHM_CODE: Readonly<Record<RateLimitAlgorithm, number>> = {
  'fixed-window': 1,
  'sliding-window': 2,
  'token-bucket': 3,
};

/*
 * Decisions, each atomic: the arithmetic of @breakwater/core's rate-algorithms (fixed window,
 * weighted sliding window, token bucket, block after refusal), line for line, in integers.
 *
 * Decisions come in batches: the decisions a process issued in one tick, taken in order (a key
 * that appears twice sees its first decision when taking the second), on one reading of TIME.
 *
 * KEYS[i]  the state key of decision i
 * ARGV     six per decision: algorithm code, limit, windowMs, burst, blockDurationMs, cost;
 *          a negative cost is a refund of -cost (see below)
 * returns  four per decision: { allowed (1 or 0), remaining, resetMs, retryAfterMs }; a refund
 *          answers { 1, 0, 0, 0 }
 *
 * A refund gives units back on the record as a decision now would see it: a window's count
 * never drops below zero, a bucket never rises above its burst, a block stays, and a key that
 * is missing, expired or of another algorithm is left alone.
 *
 * The record is 41 bytes: struct '<Bddddd' = algorithm code (1 byte), then time, value, previous,
 * blockedUntil and expiresAt as little-endian doubles (all integers). Packing with `struct`
 * allocates no strings per field, which keeps the script's own cost small next to its
 * commands. A batch costs one TIME; each decision costs GET, plus one SET with PX when something
 * changed: an allowed decision with cost > 0, or a refusal that starts a block. A peek or a plain refusal
 * writes nothing: while the clock moves forward the normalised record (window rolled, bucket
 * refilled) is equivalent to the stored one; if the server clock ever steps back (a failover
 * to a host whose clock is behind), the key resumes from its last written time, so still no
 * window rolls back and no bucket refills twice. A record of another algorithm (the limiter was
 * reconfigured) or of another size counts as a missing key.
 *
 * `expiresAt` is stored, and the key also gets PX (expiresAt - server time): Redis drops idle
 * keys on its own, while freshness is still decided exactly as the reference does
 * (`expiresAt <= now`), even in the millisecond before Redis reaps the key.
 *
 * Time is the server's clock (TIME), so hosts with skewed clocks share one timeline. TIME is
 * non-deterministic; that is fine because Redis replicates a script's effects (the SET it
 * performs), not the script itself: the only mode since Redis 7 and the default since Redis 5
 * (the minimum version for this script).
 *
 * Numbers: every stored and computed value is an integer below 2^53 (the limiter bounds
 * limit * windowMs and burst * windowMs by 2^50), so Lua doubles compute exactly what the
 * JavaScript reference computes, and a double stores each of them exactly. The expiry is
 * passed to PX as a number, which Redis writes with every digit (no string.format per write).
 */
export const RATE_LIMIT_SCRIPT = `
local clock = redis.call('TIME')
local serverNow = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

-- A window record moved on to the window of \`now\`: time, value, previous.
local function roll(algorithm, windowMs, now, time, value, previous)
  local start = now - now % windowMs
  if start > time then
    if algorithm == 2 then
      if start - time == windowMs then previous = value else previous = 0 end
    end
    value, time = 0, start
  end
  return time, value, previous
end

-- One decision on \`key\`: allowed (1/0), remaining, resetMs, retryAfterMs.
local function decide(key, algorithm, limit, windowMs, burst, blockMs, cost)
  local now = serverNow
  local time, value, previous, blockedUntil, expiresAt = 0, 0, 0, 0, 0
  local raw = redis.call('GET', key)
  if raw and #raw == 41 then
    local a, t, v, p, b, e = struct.unpack('<Bddddd', raw)
    if a == algorithm then
      time, value, previous, blockedUntil, expiresAt = t, v, p, b, e
    end
  end

  local capacity, wait, remaining, resetMs
  local allowed = false
  if algorithm == 3 then
    capacity = burst
    local cap = burst * windowMs
    if expiresAt <= now then
      value, time, previous, blockedUntil = cap, now, 0, 0
    elseif now > time then
      local level = value + (now - time) * limit
      if level < cap then value = level else value = cap end
      time = now
    else
      now = time
    end
    local need = cost * windowMs
    wait = 0
    if cost > burst then
      wait = windowMs
    elseif value < need then
      wait = math.ceil((need - value) / limit)
    end
    if wait == 0 and blockedUntil <= now then
      allowed = true
      value = value - need
    end
    remaining = math.floor(value / windowMs)
    resetMs = math.ceil((cap - value) / limit)
    if value < cap then expiresAt = now + resetMs else expiresAt = 0 end
  else
    capacity = limit
    if expiresAt <= now then
      time, value, previous, blockedUntil = now - now % windowMs, 0, 0, 0
    elseif now < time then
      now = time
    else
      time, value, previous = roll(algorithm, windowMs, now, time, value, previous)
    end
    if algorithm == 1 then
      resetMs = time + windowMs - now
      wait = 0
      if cost > limit then
        wait = windowMs
      elseif value + cost > limit then
        wait = resetMs
      end
      if wait == 0 and blockedUntil <= now then
        allowed = true
        value = value + cost
      end
      remaining = limit - value
      if remaining < 0 then remaining = 0 end
      if value > 0 then expiresAt = time + windowMs else expiresAt = 0 end
    else
      local elapsed = now - time
      local scaledLimit = limit * windowMs
      local prevUsed = previous * (windowMs - elapsed)
      wait = 0
      if cost > limit then
        wait = windowMs
      elseif prevUsed + (value + cost) * windowMs > scaledLimit then
        local a = limit - value - cost
        local inThisWindow = false
        if a >= 0 and previous > 0 then
          local e = windowMs - math.floor(a * windowMs / previous)
          if e < windowMs then
            wait = e - elapsed
            inThisWindow = true
          end
        end
        if not inThisWindow then
          local a2 = limit - cost
          if value <= a2 then
            wait = windowMs - elapsed
          else
            wait = 2 * windowMs - elapsed - math.floor(a2 * windowMs / value)
          end
        end
      end
      if wait == 0 and blockedUntil <= now then
        allowed = true
        value = value + cost
      end
      remaining = math.floor((scaledLimit - prevUsed - value * windowMs) / windowMs)
      if remaining < 0 then remaining = 0 end
      if value > 0 then
        expiresAt = time + 2 * windowMs
      elseif previous > 0 then
        expiresAt = time + windowMs
      else
        expiresAt = 0
      end
      if expiresAt > now then resetMs = expiresAt - now else resetMs = 0 end
    end
  end

  local write = allowed and cost > 0
  local retryAfterMs = 0
  if not allowed then
    if blockedUntil <= now and blockMs > 0 and cost > 0 and cost <= capacity then
      blockedUntil = now + blockMs
      write = true
    end
    retryAfterMs = wait
    if blockedUntil > now then
      local block = blockedUntil - now
      if block > retryAfterMs then retryAfterMs = block end
      if block > resetMs then resetMs = block end
      remaining = 0
      if blockedUntil > expiresAt then expiresAt = blockedUntil end
    end
  end

  if write then
    redis.call('SET', key,
      struct.pack('<Bddddd', algorithm, time, value, previous, blockedUntil, expiresAt),
      'PX', expiresAt - serverNow)
  end

  if allowed then
    return 1, remaining, resetMs, 0
  end
  return 0, remaining, resetMs, retryAfterMs
end

-- Gives \`amount\` back to \`key\`, on the record as a decision now would see it.
local function refund(key, algorithm, limit, windowMs, burst, amount)
  local raw = redis.call('GET', key)
  if not raw or #raw ~= 41 then return end
  local a, time, value, previous, blockedUntil, expiresAt = struct.unpack('<Bddddd', raw)
  local now = serverNow
  if a ~= algorithm or expiresAt <= now then return end
  if algorithm == 3 then
    local cap = burst * windowMs
    if now > time then
      local level = value + (now - time) * limit
      if level < cap then value = level else value = cap end
      time = now
    end
    value = value + amount * windowMs
    if value > cap then value = cap end
    if value < cap then expiresAt = time + math.ceil((cap - value) / limit) else expiresAt = 0 end
  else
    if now < time then now = time end
    time, value, previous = roll(algorithm, windowMs, now, time, value, previous)
    value = value - amount
    if value < 0 then value = 0 end
    if value > 0 then
      if algorithm == 1 then expiresAt = time + windowMs else expiresAt = time + 2 * windowMs end
    elseif algorithm == 2 and previous > 0 then
      expiresAt = time + windowMs
    else
      expiresAt = 0
    end
  end
  if blockedUntil > expiresAt then expiresAt = blockedUntil end
  if expiresAt > serverNow then
    redis.call('SET', key,
      struct.pack('<Bddddd', algorithm, time, value, previous, blockedUntil, expiresAt),
      'PX', expiresAt - serverNow)
  else
    redis.call('DEL', key)
  end
end

local out = {}
for i = 1, #KEYS do
  local at = (i - 1) * 6
  local algorithm, limit = tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  local windowMs, burst = tonumber(ARGV[at + 3]), tonumber(ARGV[at + 4])
  local cost = tonumber(ARGV[at + 6])
  local n = #out
  if cost < 0 then
    refund(KEYS[i], algorithm, limit, windowMs, burst, -cost)
    out[n + 1], out[n + 2], out[n + 3], out[n + 4] = 1, 0, 0, 0
  else
    out[n + 1], out[n + 2], out[n + 3], out[n + 4] =
      decide(KEYS[i], algorithm, limit, windowMs, burst, tonumber(ARGV[at + 5]), cost)
  end
end
return out
`;

/** SHA-1 of {@link RATE_LIMIT_SCRIPT}: the name EVALSHA runs it by. */
export const RATE_LIMIT_SCRIPT_SHA = createHash('sha1').update(RATE_LIMIT_SCRIPT).digest('hex');
