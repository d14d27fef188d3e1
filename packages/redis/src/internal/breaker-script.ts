import { createHash } from 'node:crypto';
import { BREAKER_PROLOGUE } from './breaker-settings';

/** Operations of the breaker script (ARGV[1]). */
export const OP_SYNC = 0;
export const OP_FLUSH = 1;
export const OP_CLAIM = 2;
export const OP_SETTLE = 3;
export const OP_COMMAND = 4;

/** State codes, in the script, its replies and its messages. */
export const STATE_CODES = ['closed', 'open', 'half_open', 'forced_open', 'disabled'] as const;

/*
 * The shared circuit of one breaker name, decided atomically.
 *
 * KEYS[1]  the state hash            `<prefix>{<name>}`
 * KEYS[2]  the probe permits (zset)  `<prefix>{<name>}:probes`, member = permit id, score = lease end
 * ARGV[1]  operation: 0 sync, 1 flush, 2 claim, 3 settle, 4 command
 * ARGV[2..] the channel transitions are published on, the breaker name and its settings, in the
 *          order of BREAKER_SETTINGS (breaker-settings.ts), which also declares their Lua locals
 * ARGV[CLOCK_ARG] the time to decide on (ms), or '' for the server's clock (TIME)
 * ARGV[OP_ARG..]  the operation's arguments:
 *   flush    generation, calls, failures, slow calls, successes, failures after the last success
 *   claim    permit id
 *   settle   generation, permit id, outcome (0 success, 1 failure, 2 ignore)
 *   command  state code, open time (ms), reason
 * returns  { applied (1/0), generation, state, retryAfterMs, openedAgoMs (-1), backoffLevel,
 *            closedAgoMs (-1), reason, recheckMs }
 *
 * Every decision is taken on the server's clock (TIME; a store given a clock, for tests, sends
 * its time instead) and on the totals of every process. A change of state bumps the generation
 * and is published as
 * `generation|state|retryAfterMs|openedAgoMs|backoffLevel|closedAgoMs|reason|name`, in the same
 * atomic step: subscribers see transitions in generation order. Times leave the script relative
 * (milliseconds ago, milliseconds from now), so hosts with skewed clocks agree.
 *
 * A flush carries the generation its calls were admitted in: a batch from an older generation
 * (the circuit moved since) is dropped, so a call admitted before a transition never changes the
 * next circuit, and two processes can never open the same closed circuit twice. A settlement
 * carries the generation of the half-open circuit its permit came from, for the same reason.
 *
 * A new key starts at generation = server time in ms (kept as `b`), so a circuit that expired or
 * was lost with a restarted server never reuses a generation a process may still hold. A batch
 * taken while no key existed (generation 0) counts as long as the new circuit has not moved.
 *
 * Batches arrive up to a flush interval late, and a process whose own counts could trip sends at
 * once: decisions wait until every process has had time to report. With `quietMs` (two flush
 * intervals):
 * - a rate opens the circuit only once the window has been collecting for `quietMs` since the
 *   circuit closed (`since`), so the first reports after a close cannot decide alone;
 * - consecutive failures count across processes: any batch holding a success ends the run (its
 *   failures after the last success start the next one), and the rule opens the circuit only
 *   once the run is `failureThreshold` long and began (`rs`) at least `quietMs` ago, time enough
 *   for every process to report a success that would have ended it.
 * A rule held back only by that wait answers `recheckMs`: the process flushes again (an empty
 * batch if need be) then, so the decision does not depend on more calls arriving.
 *
 * Windows. Count: the last `size` calls, kept as one record per batch (arrival time, calls,
 * failures, slow calls; 20 bytes packed) with running totals; the oldest batches are dropped (the
 * oldest one cut proportionally) down to `size` calls, except batches younger than `quietMs`:
 * every process's latest batch stays in the window, so a process that reports early cannot
 * crowd out the successes of processes whose batches are still on their way. Time: one record
 * per bucket of `bucketMs` (index, calls, failures, slow calls; 20 bytes), on server time;
 * buckets older than the window are dropped at each flush.
 *
 * A flush costs TIME, HMGET and HSET (plus PEXPIRE once per tenth of the key's time to live, and
 * DEL and PUBLISH on a transition; SPUBLISH on the breaker's own channel and slot in sharded mode).
 */
export const BREAKER_SCRIPT = `
local CLOSED, OPEN, HALF, FORCED, DISABLED = 0, 1, 2, 3, 4
local op = tonumber(ARGV[1])
${BREAKER_PROLOGUE}

local now = clockMs
if not now then
  local clock = redis.call('TIME')
  now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
end

local f = redis.call('HMGET', KEYS[1], 's', 'g', 'o', 'n', 'l', 'c', 'r', 'ps', 'run', 'rs',
  'since', 'wk', 'w', 'wc', 'wf', 'wsl', 'x', 'b')
local state = tonumber(f[1]) or CLOSED
local gen = tonumber(f[2]) or 0
local openedAt = tonumber(f[3])
local nextAt = tonumber(f[4])
local level = tonumber(f[5]) or 0
local closedAt = tonumber(f[6])
local reason = f[7] or ''
local probeSuccesses = tonumber(f[8]) or 0
local run = tonumber(f[9]) or 0
local runStart = tonumber(f[10])
local since = tonumber(f[11]) or now
local wk = f[12] or ''
local w = f[13] or ''
local wc = tonumber(f[14]) or 0
local wf = tonumber(f[15]) or 0
local wsl = tonumber(f[16]) or 0
local expiredAt = tonumber(f[17]) or 0
local base = tonumber(f[18]) or 0
local recheck = 0

local function num(x)
  if x == nil then return '' end
  return string.format('%.0f', x)
end

local function reply(applied)
  local retry, openedAgo, closedAgo = 0, -1, -1
  if state == OPEN and nextAt then retry = math.max(0, nextAt - now) end
  if openedAt and (state == OPEN or state == FORCED) then openedAgo = math.max(0, now - openedAt) end
  if closedAt then closedAgo = math.max(0, now - closedAt) end
  return { applied, gen, state, retry, openedAgo, level, closedAgo, reason, recheck }
end

local function save(transition)
  if gen == 0 then
    gen, base = now, now
  end
  if transition then gen = gen + 1 end
  local refresh = transition or now - expiredAt >= ttlMs / 10
  if refresh then expiredAt = now end
  redis.call('HSET', KEYS[1], 's', state, 'g', num(gen), 'o', num(openedAt), 'n', num(nextAt),
    'l', level, 'c', num(closedAt), 'r', reason, 'ps', probeSuccesses, 'run', run,
    'rs', num(runStart), 'since', num(since), 'wk', wk, 'w', w, 'wc', wc, 'wf', wf, 'wsl', wsl,
    'x', num(expiredAt), 'b', num(base))
  if refresh then
    local ttl = ttlMs
    if state == OPEN and nextAt and nextAt > now then ttl = ttl + nextAt - now end
    redis.call('PEXPIRE', KEYS[1], num(ttl))
  end
  if transition then
    local r = reply(1)
    local publish = 'PUBLISH'
    if sharded == 1 then publish = 'SPUBLISH' end
    redis.call(publish, channel, num(gen) .. '|' .. state .. '|' .. num(r[4]) .. '|' ..
      num(r[5]) .. '|' .. level .. '|' .. num(r[7]) .. '|' .. reason .. '|' .. name)
  end
end

local function clearWindow()
  w, wc, wf, wsl, run, runStart, since = '', 0, 0, 0, 0, nil, now
end

local function effectiveLevel()
  if state == CLOSED and (resetAfter == 0 or closedAt == nil or now - closedAt >= resetAfter) then
    return 0
  end
  return level
end

local function openTime()
  if multiplier == 1 or level == 0 then return openMs end
  return math.floor(math.min(maxMs, openMs * multiplier ^ level))
end

local function percent(x)
  local v = math.floor(x * 10 + 0.5) / 10
  if v == math.floor(v) then return string.format('%d%%', v) end
  return string.format('%.1f%%', v)
end

-- Milliseconds until a rule met since \`t\` may act (<= 0: now); remembers the earliest recheck.
local function wait(t)
  local left = t + quietMs - now
  if left > 0 and (recheck == 0 or left < recheck) then recheck = left end
  return left
end

local function enterOpen(ms, why)
  state, openedAt, nextAt, reason, probeSuccesses = OPEN, now, now + ms, why, 0
  redis.call('DEL', KEYS[2])
end

local function enterClosed(why)
  state, openedAt, nextAt, reason, probeSuccesses, closedAt = CLOSED, nil, nil, why, 0, now
  if resetAfter == 0 then level = 0 end
  clearWindow()
  redis.call('DEL', KEYS[2])
end

if op == 0 then
  return reply(1)
end

if op == 1 then
  -- flush
  local batchGen = tonumber(ARGV[OP_ARG])
  if state ~= CLOSED or (batchGen ~= gen and not (batchGen == 0 and gen == base)) then
    return reply(0)
  end
  local calls, failures = tonumber(ARGV[OP_ARG + 1]), tonumber(ARGV[OP_ARG + 2])
  local slow = tonumber(ARGV[OP_ARG + 3])
  local successes, trailing = tonumber(ARGV[OP_ARG + 4]), tonumber(ARGV[OP_ARG + 5])
  if wk ~= windowKind then
    wk = windowKind
    clearWindow()
  end
  if bucketMs == 0 then
    if calls > 0 then
      w = w .. struct.pack('<dI4I4I4', now, calls, failures, slow)
      wc, wf, wsl = wc + calls, wf + failures, wsl + slow
    end
    local excess, pos, horizon = wc - windowSize, 1, now - quietMs
    while excess > 0 and pos <= #w do
      local at, c, cf, cs = struct.unpack('<dI4I4I4', w, pos)
      if at > horizon then break end
      if c <= excess then
        wc, wf, wsl, excess, pos = wc - c, wf - cf, wsl - cs, excess - c, pos + 20
      else
        local keep = c - excess
        local kf = math.floor(cf * keep / c + 0.5)
        local ks = math.floor(cs * keep / c + 0.5)
        wc, wf, wsl = wc - excess, wf - (cf - kf), wsl - (cs - ks)
        w = string.sub(w, 1, pos - 1) .. struct.pack('<dI4I4I4', at, keep, kf, ks) ..
          string.sub(w, pos + 20)
        excess = 0
      end
    end
    if pos > 1 then w = string.sub(w, pos) end
  else
    local current = math.floor(now / bucketMs)
    local kept, found = {}, calls == 0
    wc, wf, wsl = 0, 0, 0
    for pos = 1, #w - 19, 20 do
      local index, c, cf, cs = struct.unpack('<dI4I4I4', w, pos)
      if index > current - windowSize then
        if index == current and calls > 0 then
          c, cf, cs, found = c + calls, cf + failures, cs + slow, true
        end
        kept[#kept + 1] = struct.pack('<dI4I4I4', index, c, cf, cs)
        wc, wf, wsl = wc + c, wf + cf, wsl + cs
      end
    end
    if not found then
      kept[#kept + 1] = struct.pack('<dI4I4I4', current, calls, failures, slow)
      wc, wf, wsl = wc + calls, wf + failures, wsl + slow
    end
    w = table.concat(kept)
  end
  if successes > 0 then
    run = trailing
    if trailing > 0 then runStart = now else runStart = nil end
  elseif failures > 0 then
    if run == 0 then runStart = now end
    run = run + failures
  end
  local why = nil
  if failureThreshold > 0 and run >= failureThreshold and wait(runStart or now) <= 0 then
    why = run .. ' consecutive failures (cluster)'
  elseif wc >= minimumCalls and failureRate > 0 and wf * 100 >= failureRate * wc and
    wait(since) <= 0 then
    why = 'failure rate ' .. percent(wf * 100 / wc) .. ' >= ' .. tostring(failureRate) ..
      '% over ' .. wc .. ' calls (cluster)'
  elseif wc >= minimumCalls and slowRate > 0 and wsl * 100 >= slowRate * wc and
    wait(since) <= 0 then
    why = 'slow-call rate ' .. percent(wsl * 100 / wc) .. ' >= ' .. tostring(slowRate) ..
      '% over ' .. wc .. ' calls (cluster)'
  end
  if why then
    recheck = 0
    local reopenedSoon = multiplier > 1 and resetAfter > 0 and closedAt ~= nil and
      now - closedAt < resetAfter
    if effectiveLevel() > 0 or reopenedSoon then
      level = math.min(level + 1, maxLevel)
    else
      level = 0
    end
    enterOpen(openTime(), why)
  end
  save(why ~= nil)
  return reply(1)
end

if op == 2 then
  -- claim
  local moved = false
  if state == OPEN and nextAt and now + 50 >= nextAt then
    state, reason, probeSuccesses = HALF, 'open time elapsed', 0
    redis.call('DEL', KEYS[2])
    moved = true
  end
  if state ~= HALF then return reply(0) end
  if moved then save(true) end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', num(now))
  if redis.call('ZCARD', KEYS[2]) >= maxProbes then return reply(0) end
  redis.call('ZADD', KEYS[2], num(now + leaseMs), ARGV[OP_ARG])
  redis.call('PEXPIRE', KEYS[2], num(leaseMs + ttlMs))
  return reply(1)
end

if op == 3 then
  -- settle
  if state ~= HALF or tonumber(ARGV[OP_ARG]) ~= gen then return reply(0) end
  if redis.call('ZREM', KEYS[2], ARGV[OP_ARG + 1]) == 0 then return reply(0) end
  local outcome = tonumber(ARGV[OP_ARG + 2])
  if outcome == 2 then return reply(1) end
  if outcome == 1 then
    level = math.min(level + 1, maxLevel)
    enterOpen(openTime(), 'probe failed (cluster)')
    save(true)
    return reply(1)
  end
  probeSuccesses = probeSuccesses + 1
  if probeSuccesses >= successThreshold then
    local noun = 'successes'
    if probeSuccesses == 1 then noun = 'success' end
    enterClosed(probeSuccesses .. ' probe ' .. noun .. ' (cluster)')
    save(true)
  else
    redis.call('HSET', KEYS[1], 'ps', probeSuccesses)
  end
  return reply(1)
end

-- command
local target, ms = tonumber(ARGV[OP_ARG]), tonumber(ARGV[OP_ARG + 1])
local decayed = effectiveLevel()
if target == CLOSED then
  enterClosed(ARGV[OP_ARG + 2])
  level, closedAt = 0, nil
elseif target == OPEN then
  level = decayed
  enterOpen(ms, ARGV[OP_ARG + 2])
else
  level = decayed
  state, nextAt, reason, probeSuccesses = target, nil, ARGV[OP_ARG + 2], 0
  if target == FORCED then openedAt = now else openedAt = nil end
  redis.call('DEL', KEYS[2])
end
save(true)
return reply(1)
`;

/** SHA-1 of {@link BREAKER_SCRIPT}, for EVALSHA. */
export const BREAKER_SCRIPT_SHA = createHash('sha1').update(BREAKER_SCRIPT).digest('hex');
