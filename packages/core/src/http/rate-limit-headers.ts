import type { RateLimitDecision } from '../rate-limit/rate-limit-store';
import { retryAfterSeconds } from './http-response';

/**
 * A version of draft-ietf-httpapi-ratelimit-headers: `'draft-11'` and `'draft-8'` send
 * `RateLimit-Policy: "api";q=100;w=60` and `RateLimit: "api";r=42;t=17` (lists: stacked limiters
 * each add an item); `'draft-7'` sends `RateLimit-Policy: 100;w=60` and
 * `RateLimit: limit=100, remaining=42, reset=17`; `'draft-6'` sends `RateLimit-Policy` and
 * `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`. With drafts 6 and 7 stacked
 * limiters each add a policy, and the other fields describe the limiter with the least remaining.
 */
export type RateLimitHeadersDraft = 'draft-11' | 'draft-8' | 'draft-7' | 'draft-6';

/** Which rate-limit headers to send. */
export interface RateLimitHeaderOptions {
  /**
   * The standard fields: `true` for draft-ietf-httpapi-ratelimit-headers-11, a draft name for
   * clients that parse an older one, `false` for none.
   * @defaultValue `'draft-11'`
   */
  standard?: boolean | RateLimitHeadersDraft;
  /** `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (epoch seconds). @defaultValue false */
  legacy?: boolean;
}

/**
 * Quotes a policy name as a structured-field string: printable ASCII only, `"` and `\` escaped,
 * anything else replaced by `_`.
 */
export function quotePolicyName(name: string): string {
  let out = '"';
  for (let i = 0; i < name.length && i < 64; i++) {
    const code = name.charCodeAt(i);
    const ch = name[i]!;
    if (code < 0x20 || code > 0x7e) out += '_';
    else if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else out += ch;
  }
  return `${out}"`;
}

/**
 * The rate-limit headers for a decision, as lower-case name/value pairs:
 * `RateLimit-Policy: "api";q=100;w=60` and `RateLimit: "api";r=42;t=17` (draft-11, or the draft
 * `options.standard` names), the legacy `X-RateLimit-*` trio on request, and `Retry-After` when
 * the request was refused.
 */
export function rateLimitHeaders(
  name: string,
  windowMs: number,
  decision: RateLimitDecision,
  options: RateLimitHeaderOptions = {},
  nowMs?: number,
): Record<string, string> {
  const headers: Record<string, string> = {};
  new RateLimitHeaderWriter(name, windowMs, decision.limit, options).write(
    recordTarget(headers),
    decision,
    nowMs,
  );
  return headers;
}

/** A {@link HeaderTarget} over a plain record of lower-case names. @internal */
export function recordTarget(headers: Record<string, string>): HeaderTarget {
  return {
    getHeader: (name) => headers[name],
    setHeader: (name, value) => (headers[name] = value),
  };
}

/** Where rate-limit headers are written: a Node `ServerResponse` (Express `res`, Koa `ctx.res`). */
export interface HeaderTarget {
  getHeader(name: string): unknown;
  setHeader(name: string, value: string): unknown;
}

/** The draft-7 `remaining=` member. */
const DRAFT7_REMAINING = /remaining=(\d+)/;

/**
 * Writes one limiter's rate-limit headers for a decision: strings that depend only on the
 * limiter are built once, and a request through several limiters gets every policy listed.
 * @internal
 */
export class RateLimitHeaderWriter {
  /** The names of the headers this writer may set (Retry-After aside). */
  readonly names: readonly string[];
  private readonly draft: RateLimitHeadersDraft | undefined;
  private readonly legacy: boolean;
  private readonly policy: string;
  private readonly prefix: string;
  private readonly capacity: string;
  /** The `;t=<seconds>` suffix of the last decision, rebuilt only when the seconds change. */
  private lastResetS = -1;
  private lastSuffix = '';
  /** The legacy epoch-seconds reset of the last decision, rebuilt once a second at most. */
  private lastEpochS = -1;
  private lastEpoch = '';

  constructor(name: string, windowMs: number, capacity: number, options: RateLimitHeaderOptions) {
    const standard = options.standard ?? true;
    this.draft = standard === true ? 'draft-11' : standard === false ? undefined : standard;
    this.legacy = options.legacy === true;
    const windowS = Math.max(1, Math.ceil(windowMs / 1000));
    const quoted = quotePolicyName(name);
    const modern = this.draft === 'draft-11' || this.draft === 'draft-8';
    this.policy = modern ? `${quoted};q=${capacity};w=${windowS}` : `${capacity};w=${windowS}`;
    this.prefix = modern ? `${quoted};r=` : `limit=${capacity}, remaining=`;
    this.capacity = String(capacity);
    const names: string[] = [];
    if (this.draft !== undefined) names.push('ratelimit-policy');
    if (modern || this.draft === 'draft-7') names.push('ratelimit');
    if (this.draft === 'draft-6')
      names.push('ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset');
    if (this.legacy) names.push('x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset');
    this.names = names;
  }

  /** Writes the headers of `decision` to `target`, after those other limiters wrote. */
  write(target: HeaderTarget, decision: RateLimitDecision, nowMs?: number): void {
    const remaining = decision.remaining;
    const resetMs = decision.resetMs;
    const resetS = resetMs > 0 ? Math.ceil(resetMs / 1000) : 0;
    const draft = this.draft;
    if (draft !== undefined) {
      append(target, 'ratelimit-policy', this.policy);
      if (draft === 'draft-11' || draft === 'draft-8') {
        if (resetS !== this.lastResetS) {
          this.lastResetS = resetS;
          this.lastSuffix = `;t=${resetS}`;
        }
        append(target, 'ratelimit', this.prefix + remaining + this.lastSuffix);
      } else if (draft === 'draft-7') {
        const existing = target.getHeader('ratelimit');
        const other = typeof existing === 'string' ? DRAFT7_REMAINING.exec(existing) : null;
        if (other === null || remaining < Number(other[1])) {
          target.setHeader('ratelimit', `${this.prefix}${remaining}, reset=${resetS}`);
        }
      } else if (fewerRemaining(target, 'ratelimit-remaining', remaining)) {
        target.setHeader('ratelimit-limit', this.capacity);
        target.setHeader('ratelimit-remaining', String(remaining));
        target.setHeader('ratelimit-reset', String(resetS));
      }
    }
    if (this.legacy && fewerRemaining(target, 'x-ratelimit-remaining', remaining)) {
      target.setHeader('x-ratelimit-limit', this.capacity);
      target.setHeader('x-ratelimit-remaining', String(remaining));
      const epochS = Math.ceil(((nowMs ?? Date.now()) + resetMs) / 1000);
      if (epochS !== this.lastEpochS) {
        this.lastEpochS = epochS;
        this.lastEpoch = String(epochS);
      }
      target.setHeader('x-ratelimit-reset', this.lastEpoch);
    }
    if (!decision.allowed) {
      target.setHeader('retry-after', String(retryAfterSeconds(decision.retryAfterMs)));
    }
  }
}

/** Sets a list field, or adds an item to the list another limiter started. */
function append(target: HeaderTarget, name: string, item: string): void {
  const existing = target.getHeader(name);
  target.setHeader(
    name,
    typeof existing === 'string' && existing !== '' ? `${existing}, ${item}` : item,
  );
}

/** Whether no other limiter has set `name`, or set it to more than `remaining`. */
function fewerRemaining(target: HeaderTarget, name: string, remaining: number): boolean {
  const existing = target.getHeader(name);
  return existing === undefined || remaining < Number(existing);
}
