/**
 * Joins the rate-limit headers of several limiters of one route into one set.
 *
 * Core's `rateLimitHeaders()` writes the fields of one limiter. Draft-ietf-httpapi-ratelimit-
 * headers-11 makes `RateLimit-Policy` and `RateLimit` lists with one member per policy, so the
 * members are joined here with `, ` in the order the limits ran; the legacy `X-RateLimit-*`
 * trio, which has room for one limiter only, describes the one with the fewest requests left,
 * and `Retry-After` is the longest wait. This belongs in core next to `rateLimitHeaders()` and
 * moves there once core writes header lists for stacked limiters itself.
 * @internal
 */
export function stackHeaders(
  sets: readonly Readonly<Record<string, string>>[],
): Record<string, string> {
  if (sets.length === 1) return { ...sets[0] };
  const out: Record<string, string> = {};
  let fewest = Infinity;
  for (const headers of sets) {
    for (const name of ['ratelimit-policy', 'ratelimit']) {
      const value = headers[name];
      if (value !== undefined)
        out[name] = out[name] === undefined ? value : `${out[name]}, ${value}`;
    }
    const remaining = headers['x-ratelimit-remaining'];
    if (remaining !== undefined && Number(remaining) < fewest) {
      fewest = Number(remaining);
      for (const name of ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']) {
        if (headers[name] !== undefined) out[name] = headers[name];
      }
    }
    const retryAfter = headers['retry-after'];
    if (retryAfter !== undefined && !(Number(out['retry-after']) >= Number(retryAfter))) {
      out['retry-after'] = retryAfter;
    }
  }
  return out;
}
