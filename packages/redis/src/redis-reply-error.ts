/**
 * Rejection of a Redis-backed store whose script answered something it never answers: the wrong
 * type, length or range (a proxy or a server speaking junk, a script replaced under the same
 * SHA). A limiter treats it like any store failure (its fallback answers, health says `warn`); a
 * shared breaker decides on its own counts until the store answers properly again. It carries no
 * stack trace.
 */
export class RedisReplyError extends Error {
  override readonly name = 'RedisReplyError';
  /** Stable machine-readable code. */
  readonly code = 'EREDISREPLY';
  /** A short, bounded description of the reply received. */
  readonly reply: string;

  constructor(what: string, reply: unknown) {
    const shown = describeReply(reply);
    super(`Malformed reply from Redis for ${what}: ${shown}`);
    this.reply = shown;
  }

  /** Creates the error without capturing a stack trace. */
  static create(what: string, reply: unknown): RedisReplyError {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return new RedisReplyError(what, reply);
    } finally {
      Error.stackTraceLimit = limit;
    }
  }
}

/**
 * Whether `error` is a {@link RedisReplyError}. Checks the shape, not `instanceof`, so it also
 * recognises errors from a second installed copy of the package.
 */
export function isRedisReplyError(error: unknown): error is RedisReplyError {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { code?: unknown }).code === 'EREDISREPLY' &&
    (error as { name?: unknown }).name === 'RedisReplyError'
  );
}

const MAX_SHOWN = 120;

function describeReply(reply: unknown): string {
  let text: string;
  try {
    text = Array.isArray(reply)
      ? `[${reply
          .slice(0, 12)
          .map((item) => (typeof item === 'string' ? JSON.stringify(item) : String(item)))
          .join(', ')}${reply.length > 12 ? ', ...' : ''}]`
      : typeof reply === 'string'
        ? JSON.stringify(reply)
        : String(reply);
  } catch {
    text = typeof reply;
  }
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN)}...` : text;
}
