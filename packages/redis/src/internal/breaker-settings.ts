import type { SharedBreakerSettings } from '@breakwater/core';

/** What one breaker's script arguments are made of: its settings and the store's own. */
export interface BreakerScriptInput {
  /** The channel transitions are published on. */
  readonly channel: string;
  /** Publish with SPUBLISH (sharded pub/sub, Redis 7+) rather than PUBLISH. */
  readonly sharded: boolean;
  /** The breaker's name (ends every published message). */
  readonly name: string;
  /** The breaker's resolved options. */
  readonly settings: SharedBreakerSettings;
  /** How long a probe permit is held when its holder never settles it. */
  readonly leaseMs: number;
  /** How long a decision waits for every process to report (two flush intervals). */
  readonly quietMs: number;
  /** A breaker's keys expire after this long without a write. */
  readonly ttlMs: number;
}

/** One script argument: its Lua local, whether Lua reads it as a number, and its value. */
type Setting = readonly [
  luaName: string,
  kind: 'number' | 'string',
  value: (input: BreakerScriptInput) => string | number,
];

/**
 * The breaker script's settings, in ARGV order (from ARGV[2]; ARGV[1] is the operation). The one
 * place both sides read: {@link breakerArgs} builds the values a store sends, and
 * {@link BREAKER_PROLOGUE} declares the Lua locals that receive them.
 */
export const BREAKER_SETTINGS: readonly Setting[] = [
  ['channel', 'string', (i) => i.channel],
  ['sharded', 'number', (i) => (i.sharded ? 1 : 0)],
  ['name', 'string', (i) => i.name],
  ['failureThreshold', 'number', (i) => i.settings.failureThreshold],
  ['failureRate', 'number', (i) => i.settings.failureRateThreshold],
  ['slowRate', 'number', (i) => i.settings.slowCallRateThreshold],
  ['minimumCalls', 'number', (i) => i.settings.minimumCalls],
  [
    // Identifies the window's shape: a circuit reconfigured to another window starts it afresh.
    'windowKind',
    'string',
    ({ settings: { window: w } }) =>
      w.type === 'count' ? `count:${w.size}` : `time:${w.durationMs}:${w.buckets}`,
  ],
  [
    'windowSize',
    'number',
    ({ settings: { window: w } }) => (w.type === 'count' ? w.size : w.buckets),
  ],
  [
    // 0 for a count window.
    'bucketMs',
    'number',
    ({ settings: { window: w } }) => (w.type === 'count' ? 0 : w.durationMs / w.buckets),
  ],
  ['openMs', 'number', (i) => i.settings.openDurationMs],
  ['multiplier', 'number', (i) => i.settings.backoffMultiplier],
  ['maxMs', 'number', (i) => i.settings.backoffMaxMs],
  ['resetAfter', 'number', (i) => i.settings.backoffResetAfterMs],
  ['maxLevel', 'number', (i) => i.settings.maxBackoffLevel],
  ['maxProbes', 'number', (i) => i.settings.halfOpenMaxConcurrent],
  ['successThreshold', 'number', (i) => i.settings.halfOpenSuccessThreshold],
  ['leaseMs', 'number', (i) => i.leaseMs],
  ['quietMs', 'number', (i) => i.quietMs],
  ['ttlMs', 'number', (i) => i.ttlMs],
];

/** Index in ARGV (1-based) of the clock: the caller's time in ms, or '' for the server's. */
export const CLOCK_ARG = BREAKER_SETTINGS.length + 2;
/** Index in ARGV (1-based) of an operation's first argument, after the settings and the clock. */
export const OP_ARG = CLOCK_ARG + 1;

/** The Lua lines that read every setting from ARGV, the clock slot and `OP_ARG`. */
export const BREAKER_PROLOGUE = [
  ...BREAKER_SETTINGS.map(([luaName, kind], i) =>
    kind === 'number'
      ? `local ${luaName} = tonumber(ARGV[${i + 2}])`
      : `local ${luaName} = ARGV[${i + 2}]`,
  ),
  `local clockMs = tonumber(ARGV[${CLOCK_ARG}])`,
  `local OP_ARG = ${OP_ARG}`,
].join('\n');

/** The settings' values, in ARGV order. */
export function breakerArgs(input: BreakerScriptInput): (string | number)[] {
  return BREAKER_SETTINGS.map(([, , value]) => value(input));
}

/**
 * The script's whole ARGV: the operation, the breaker's settings ({@link breakerArgs}), the clock
 * (`undefined`: the server's TIME) and the operation's own arguments.
 */
export function scriptArgv(
  op: number,
  settingsArgs: readonly (string | number)[],
  nowMs: number | undefined,
  args: readonly (string | number)[],
): (string | number)[] {
  return [op, ...settingsArgs, nowMs === undefined ? '' : Math.floor(nowMs), ...args];
}
