import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { constant } from '../policies/backoff';
import { CircuitBreakerRegistry } from '../breaker/registry';
import { isCircuitOpenError, isConfigError, isTimeoutError } from '../errors';
import { createFetch, type FetchFunction } from './create-fetch';
import type { RetryEvent } from '../policies/retry';

class FakeClock {
  t = 1_700_000_000_000;
  now = (): number => this.t;
}

interface Call {
  url: string;
  method: string;
  signal: AbortSignal | undefined;
}

/** A fetch that answers from a list of responses (or errors) and records its calls. */
function stubFetch(
  ...answers: (Response | Error | ((signal?: AbortSignal) => Promise<Response>))[]
) {
  const calls: Call[] = [];
  const fetch = jest.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = input instanceof URL ? input.href : typeof input === 'string' ? input : input.url;
    const method =
      init?.method ?? (typeof input === 'object' && 'method' in input ? input.method : 'GET');
    const signal = init?.signal ?? undefined;
    calls.push({ url, method, signal });
    const answer = answers.length > 1 ? answers.shift()! : answers[0]!;
    if (answer instanceof Error) throw answer;
    if (typeof answer === 'function') return answer(signal);
    return answer.clone();
  });
  return { fetch: fetch as unknown as FetchFunction & typeof fetch, calls };
}

/** A response whose body reports when it is cancelled. */
function trackedResponse(status: number, headers: Record<string, string> = {}) {
  const cancelled = jest.fn();
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.enqueue(new TextEncoder().encode('x'));
    },
    cancel: () => {
      cancelled();
    },
  });
  return { response: new Response(body, { status, headers }), cancelled };
}

const ok = (): Response => new Response('ok', { status: 200 });
const status = (code: number, headers: Record<string, string> = {}): Response =>
  new Response(`status ${code}`, { status: code, headers });

function setup(options: { threshold?: number; clock?: FakeClock } = {}) {
  const clock = options.clock ?? new FakeClock();
  const registry = new CircuitBreakerRegistry({
    defaults: { failureThreshold: options.threshold ?? 3, openDurationMs: 60_000 },
    clock,
  });
  return { registry, clock };
}

afterEach(() => {
  jest.useRealTimers();
});

describe('createFetch', () => {
  it('passes a request through to the origin breaker and returns the response', async () => {
    const { registry } = setup();
    const stub = stubFetch(ok());
    const fetch = createFetch({ registry, fetch: stub.fetch });
    const response = await fetch('https://api.example.com/plants?id=1', { headers: { a: 'b' } });
    expect(await response.text()).toBe('ok');
    expect(stub.calls).toEqual([
      { url: 'https://api.example.com/plants?id=1', method: 'GET', signal: undefined },
    ]);
    expect(registry.list().map((b) => b.name)).toEqual(['https://api.example.com']);
    expect(registry.get('https://api.example.com').snapshot().calls).toBe(1);
  });

  it('keys breakers by origin for strings, URLs and Requests', async () => {
    const { registry } = setup();
    const fetch = createFetch({ registry, fetch: stubFetch(ok()).fetch });
    await fetch('https://a.example.com/x');
    await fetch(new URL('https://a.example.com:443/y'));
    await fetch(new Request('http://b.example.com:8080/z'));
    expect(
      registry
        .list()
        .map((b) => b.name)
        .sort(),
    ).toEqual(['http://b.example.com:8080', 'https://a.example.com']);
  });

  it('returns 5xx and 429 responses and counts them as failures until the circuit opens', async () => {
    const { registry } = setup({ threshold: 3 });
    const stub = stubFetch(status(500), status(429), status(502), ok());
    const fetch = createFetch({ registry, fetch: stub.fetch });
    const url = 'https://api.example.com/';
    expect((await fetch(url)).status).toBe(500);
    expect((await fetch(url)).status).toBe(429);
    expect((await fetch(url)).status).toBe(502);
    const error = await fetch(url).catch((e: unknown) => e);
    expect(isCircuitOpenError(error)).toBe(true);
    expect(error).toMatchObject({ breaker: 'https://api.example.com', retryAfterMs: 60_000 });
    expect(stub.fetch).toHaveBeenCalledTimes(3);
  });

  it('counts network errors as failures and rethrows them unchanged', async () => {
    const { registry } = setup({ threshold: 1 });
    const network = new TypeError('fetch failed');
    const fetch = createFetch({ registry, fetch: stubFetch(network).fetch });
    await expect(fetch('https://down.example.com/')).rejects.toBe(network);
    expect(registry.get('https://down.example.com').state).toBe('open');
  });

  it('uses isFailure to classify responses', async () => {
    const { registry } = setup({ threshold: 1 });
    const fetch = createFetch({
      registry,
      fetch: stubFetch(status(500), status(404)).fetch,
      isFailure: (r) => r.status === 404,
    });
    await fetch('https://api.example.com/');
    expect(registry.get('https://api.example.com').state).toBe('closed');
    await fetch('https://api.example.com/');
    expect(registry.get('https://api.example.com').state).toBe('open');
  });

  it.each([429, 503])('opens the circuit for exactly Retry-After seconds on a %i', async (code) => {
    const { registry, clock } = setup({ threshold: 100 });
    const stub = stubFetch(status(code, { 'Retry-After': '30' }), ok());
    const fetch = createFetch({ registry, fetch: stub.fetch });
    expect((await fetch('https://api.example.com/a')).status).toBe(code);
    const breaker = registry.get('https://api.example.com');
    expect(breaker.state).toBe('open');
    expect(breaker.retryAfterMs).toBe(30_000);
    clock.t += 29_999;
    expect(
      isCircuitOpenError(await fetch('https://api.example.com/b').catch((e: unknown) => e)),
    ).toBe(true);
    clock.t += 1;
    expect((await fetch('https://api.example.com/c')).status).toBe(200);
    expect(breaker.state).toBe('closed');
  });

  it('reads Retry-After as an HTTP date', async () => {
    const now = Date.UTC(2030, 0, 1, 12, 0, 0);
    jest.useFakeTimers({ now, doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    const registry = new CircuitBreakerRegistry({ defaults: { failureThreshold: 100 } });
    const date = new Date(now + 120_000).toUTCString();
    const fetch = createFetch({
      registry,
      fetch: stubFetch(status(503, { 'Retry-After': date })).fetch,
    });
    await fetch('https://api.example.com/');
    expect(registry.get('https://api.example.com').retryAfterMs).toBe(120_000);
  });

  it('ignores Retry-After on other statuses, in the past, zero or malformed', async () => {
    const { registry } = setup({ threshold: 100 });
    const stub = stubFetch(
      status(500, { 'Retry-After': '30' }),
      status(503, { 'Retry-After': '0' }),
      status(503, { 'Retry-After': 'Wed, 21 Oct 2015 07:28:00 GMT' }),
      status(429, { 'Retry-After': 'soon' }),
    );
    const fetch = createFetch({ registry, fetch: stub.fetch });
    for (let i = 0; i < 4; i++) await fetch('https://api.example.com/');
    expect(registry.get('https://api.example.com').state).toBe('closed');
  });

  it('answers an absurd Retry-After without rejecting: ignored with a warning, or clamped to maxOpenMs', async () => {
    const { registry } = setup({ threshold: 100 });
    const warnings: string[] = [];
    const logger = { info: () => {}, warn: (m: string) => warnings.push(m), error: () => {} };
    const stub = stubFetch(
      status(429, { 'Retry-After': '9'.repeat(400) }),
      status(503, { 'Retry-After': '99999999999' }),
    );
    const fetch = createFetch({ registry, fetch: stub.fetch, logger });
    expect((await fetch('https://api.example.com/')).status).toBe(429);
    const breaker = registry.get('https://api.example.com');
    expect(breaker.state).toBe('closed');
    expect(warnings).toEqual([expect.stringContaining('ignored an invalid Retry-After')]);
    expect((await fetch('https://api.example.com/')).status).toBe(503);
    expect(breaker.state).toBe('open');
    expect(breaker.retryAfterMs).toBe(24 * 3_600_000);
  });

  it('counts a response as a failure when isFailure throws, and still returns it', async () => {
    const { registry } = setup({ threshold: 2 });
    const errors: string[] = [];
    const logger = { info: () => {}, warn: () => {}, error: (m: string) => errors.push(m) };
    const fetch = createFetch({
      registry,
      logger,
      fetch: stubFetch(ok()).fetch,
      isFailure: (r) => (r as unknown as { missing: { status: number } }).missing.status > 499,
    });
    expect((await fetch('https://api.example.com/')).status).toBe(200);
    expect((await fetch('https://api.example.com/')).status).toBe(200);
    expect(registry.get('https://api.example.com').state).toBe('open');
    expect(errors[0]).toMatch(/isFailure threw: TypeError/);
  });

  it('retries idempotent requests and cancels the body of each retried failure', async () => {
    const { registry } = setup({ threshold: 10 });
    const first = trackedResponse(503);
    const second = trackedResponse(500);
    const stub = stubFetch(
      () => Promise.resolve(first.response),
      () => Promise.resolve(second.response),
      ok(),
    );
    const fetch = createFetch({ registry, fetch: stub.fetch, retry: { backoff: constant(0) } });
    const response = await fetch('https://api.example.com/', { method: 'put', body: 'x' });
    expect(response.status).toBe(200);
    expect(stub.fetch).toHaveBeenCalledTimes(3);
    expect(first.cancelled).toHaveBeenCalledTimes(1);
    expect(second.cancelled).toHaveBeenCalledTimes(1);
    expect(registry.get('https://api.example.com').snapshot().failures).toBe(2);
  });

  it('returns the last failure response, uncancelled, when attempts run out', async () => {
    const { registry } = setup({ threshold: 10 });
    const last = trackedResponse(502);
    const stub = stubFetch(status(500), status(500), () => Promise.resolve(last.response));
    const fetch = createFetch({
      registry,
      fetch: stub.fetch,
      retry: { maxAttempts: 3, backoff: constant(0) },
    });
    const response = await fetch('https://api.example.com/');
    expect(response).toBe(last.response);
    expect(last.cancelled).not.toHaveBeenCalled();
  });

  it('retries network errors and rethrows the last one', async () => {
    const { registry } = setup({ threshold: 10 });
    const errors = [new TypeError('a'), new TypeError('b')];
    const stub = stubFetch(errors[0]!, errors[1]!);
    const fetch = createFetch({
      registry,
      fetch: stub.fetch,
      retry: { maxAttempts: 2, backoff: constant(0) },
    });
    await expect(fetch('https://api.example.com/')).rejects.toBe(errors[1]);
    expect(stub.fetch).toHaveBeenCalledTimes(2);
  });

  it('does not retry POST or PATCH unless told to', async () => {
    const { registry } = setup({ threshold: 10 });
    const stub = stubFetch(status(503), ok());
    const fetch = createFetch({ registry, fetch: stub.fetch, retry: { backoff: constant(0) } });
    expect((await fetch('https://api.example.com/', { method: 'POST', body: '{}' })).status).toBe(
      503,
    );
    expect(stub.fetch).toHaveBeenCalledTimes(1);
    const request = new Request('https://api.example.com/', { method: 'PATCH', body: 'x' });
    const again = stubFetch(status(503), ok());
    const patch = createFetch({ registry, fetch: again.fetch, retry: { backoff: constant(0) } });
    expect((await patch(request)).status).toBe(503);

    const opted = stubFetch(status(503), ok());
    const post = createFetch({
      registry,
      fetch: opted.fetch,
      retry: { backoff: constant(0) },
      retryNonIdempotent: true,
    });
    expect((await post('https://api.example.com/', { method: 'POST', body: '{}' })).status).toBe(
      200,
    );
    expect(opted.calls.map((c) => c.method)).toEqual(['POST', 'POST']);
  });

  it('does not retry a request whose body is a stream', async () => {
    const { registry } = setup({ threshold: 10 });
    const stub = stubFetch(status(503), ok());
    const fetch = createFetch({ registry, fetch: stub.fetch, retry: { backoff: constant(0) } });
    const body = new ReadableStream({ start: (c) => c.close() });
    const init = { method: 'PUT', body, duplex: 'half' } as RequestInit;
    expect((await fetch('https://api.example.com/', init)).status).toBe(503);
    expect(stub.fetch).toHaveBeenCalledTimes(1);
  });

  it('does not retry a response whose Retry-After opened the circuit', async () => {
    const { registry } = setup({ threshold: 10 });
    const stub = stubFetch(status(429, { 'Retry-After': '5' }), ok());
    const fetch = createFetch({ registry, fetch: stub.fetch, retry: { backoff: constant(0) } });
    expect((await fetch('https://api.example.com/')).status).toBe(429);
    expect(stub.fetch).toHaveBeenCalledTimes(1);
  });

  it('rejects with CircuitOpenError when the circuit opens between attempts', async () => {
    const { registry } = setup({ threshold: 2 });
    const stub = stubFetch(status(500));
    const fetch = createFetch({
      registry,
      fetch: stub.fetch,
      retry: { maxAttempts: 5, backoff: constant(0) },
    });
    const error = await fetch('https://api.example.com/').catch((e: unknown) => e);
    expect(isCircuitOpenError(error)).toBe(true);
    expect(stub.fetch).toHaveBeenCalledTimes(2);
  });

  it('composes the caller retryOn and onRetry', async () => {
    const { registry } = setup({ threshold: 10 });
    const first = trackedResponse(404);
    const stub = stubFetch(() => Promise.resolve(first.response), ok());
    const events: RetryEvent[] = [];
    const fetch = createFetch({
      registry,
      fetch: stub.fetch,
      retry: {
        backoff: constant(0),
        retryOn: (o) => 'result' in o && (o.result as Response).status === 404,
        onRetry: (e) => events.push(e),
      },
    });
    expect((await fetch('https://api.example.com/')).status).toBe(200);
    expect(events).toHaveLength(1);
    expect(first.cancelled).toHaveBeenCalled();
  });

  it('gives each attempt a timeout and counts it as a failure', async () => {
    jest.useFakeTimers();
    const { registry } = setup({ threshold: 1 });
    const seen: (AbortSignal | undefined)[] = [];
    const hang = (signal?: AbortSignal): Promise<Response> => {
      seen.push(signal);
      return new Promise((_resolve, reject) =>
        signal?.addEventListener('abort', () => reject(signal.reason)),
      );
    };
    const fetch = createFetch({ registry, fetch: stubFetch(hang).fetch, timeoutMs: '1s' });
    const settled = fetch('https://slow.example.com/').catch((e: unknown) => e);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(isTimeoutError(await settled)).toBe(true);
    expect(seen[0]?.aborted).toBe(true);
    expect(registry.get('https://slow.example.com').state).toBe('open');
  });

  it('does not count an abort by the caller against the origin', async () => {
    const { registry } = setup({ threshold: 1 });
    const controller = new AbortController();
    const hang = (signal?: AbortSignal): Promise<Response> =>
      new Promise((_resolve, reject) =>
        signal?.addEventListener('abort', () => reject(signal.reason)),
      );
    const fetch = createFetch({
      registry,
      fetch: stubFetch(hang).fetch,
      retry: { backoff: constant(0) },
    });
    const settled = fetch('https://api.example.com/', { signal: controller.signal }).catch(
      (e: unknown) => e,
    );
    controller.abort('user left');
    expect(await settled).toBe('user left');
    const breaker = registry.get('https://api.example.com');
    expect(breaker.state).toBe('closed');
    expect(breaker.snapshot().failures).toBe(0);
  });

  it('passes the signal of a Request through', async () => {
    const { registry } = setup();
    const controller = new AbortController();
    const stub = stubFetch(ok());
    const fetch = createFetch({ registry, fetch: stub.fetch, timeoutMs: 5_000 });
    const request = new Request('https://api.example.com/', { signal: controller.signal });
    const settled = fetch(request);
    const inner = stub.calls[0]?.signal;
    await settled;
    expect(inner).toBeDefined();
    expect(inner).not.toBe(controller.signal);
  });

  it('passes URLs that are not http(s) through unprotected', async () => {
    const { registry } = setup();
    const stub = stubFetch(ok());
    const fetch = createFetch({ registry, fetch: stub.fetch });
    await fetch('data:text/plain,hello');
    await fetch('/relative');
    expect(stub.fetch).toHaveBeenCalledTimes(2);
    expect(registry.size).toBe(0);
  });

  it('uses the global fetch and a fresh registry by default', async () => {
    const original = globalThis.fetch;
    const stub = stubFetch(ok());
    globalThis.fetch = stub.fetch;
    try {
      const fetch = createFetch();
      expect((await fetch('https://api.example.com/')).status).toBe(200);
      expect(stub.fetch).toHaveBeenCalledTimes(1);
    } finally {
      globalThis.fetch = original;
    }
  });

  it('rejects bad options naming the option', () => {
    const path = (fn: () => unknown): string | undefined => {
      try {
        fn();
      } catch (error) {
        return isConfigError(error) ? error.path : String(error);
      }
      return undefined;
    };
    expect(path(() => createFetch({ registry: {} as never }))).toBe('registry');
    expect(path(() => createFetch({ fetch: 'fetch' as never }))).toBe('fetch');
    expect(path(() => createFetch({ timeoutMs: 0 }))).toBe('timeoutMs');
    expect(path(() => createFetch({ isFailure: 500 as never }))).toBe('isFailure');
    expect(path(() => createFetch({ retryNonIdempotent: 'yes' as never }))).toBe(
      'retryNonIdempotent',
    );
    expect(path(() => createFetch({ retry: 3 as never }))).toBe('retry');
    expect(path(() => createFetch({ retry: { maxAttempts: 0 } }))).toBe('retry.maxAttempts');
    expect(path(() => createFetch({ timeout: 5 } as never))).toBe('timeout');
  });
});
