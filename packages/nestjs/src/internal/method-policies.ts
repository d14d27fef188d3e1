import {
  ConfigError,
  isBulkheadFullError,
  isCircuitOpenError,
  isRateLimitError,
  type PolicyLike,
  type RateLimiter,
} from '@breakwater/core';
import { Observable, isObservable } from 'rxjs';
import type { BulkheadDecoratorOptions } from '../bulkhead.decorator';
import type { CircuitBreakerDecoratorOptions } from '../circuit-breaker.decorator';
import type { RateLimitOptions } from '../rate-limit.decorator';
import type { RetryDecoratorOptions } from '../retry.decorator';
import type { TimeoutDecoratorOptions } from '../timeout.decorator';
import type { BreakwaterState } from './breakwater-state';
import { isClientError } from './client-error';
import type { MethodBinding } from './method-wrapper';
import { decoratorLimiter } from './rate-limit-routes';
import { nestedDecorator } from './validate';

type Method = (this: unknown, ...args: unknown[]) => unknown;

/** The policy decorators found on one method. */
export interface MethodPolicies {
  retry?: RetryDecoratorOptions | undefined;
  breaker?: CircuitBreakerDecoratorOptions | undefined;
  /** `@RateLimit()` on a method that is not a route (routes are limited by the guard). */
  rateLimits?: readonly RateLimitOptions[] | undefined;
  timeout?: TimeoutDecoratorOptions | undefined;
  bulkhead?: BulkheadDecoratorOptions | undefined;
}

/** One call of a decorated method, as the policies see it. */
interface Call {
  readonly self: unknown;
  readonly args: unknown[];
  /** Runs the method once (an attempt): calls it, or subscribes to its Observable. */
  attempt(signal: AbortSignal): unknown;
  /** What a fallback method returned, as the call's result. */
  settle(value: unknown): unknown;
}

type Step = (call: Call, signal: AbortSignal | undefined) => Promise<unknown>;

/** One policy around the method, with the fallback of its decorator. */
interface Layer {
  readonly policy: PolicyLike;
  readonly fallback: string | undefined;
  /** Which errors the fallback answers. */
  readonly answers: (error: unknown) => boolean;
}

const OBSERVABLE =
  'returns an Observable but does not declare it: declare the return type (`: Observable<T>`) so that the policies guard each subscription';

/**
 * Binds a decorated method to its policies, composed outermost first: retry, circuit breaker,
 * rate limits, timeout, bulkhead. Checks the decorator options once, builds or finds each policy
 * (by name, from the module), and returns how a call runs. A method declared to return an
 * Observable returns an Observable whose every subscription runs through the policies.
 * @throws ConfigError naming `Class.method.<option>` when an option is invalid
 * @internal
 */
export function methodBinding(
  app: object,
  state: BreakwaterState,
  prototype: object,
  owner: object,
  key: string,
  original: Method,
  policies: MethodPolicies,
): MethodBinding {
  const where = `${(owner.constructor as { name: string }).name}.${key}`;
  const layers: Layer[] = [];
  const add = (
    decorator: string,
    policy: PolicyLike,
    fallback: string | undefined,
    answers: (error: unknown) => boolean = notClientError,
  ): void => {
    if (
      fallback !== undefined &&
      typeof (prototype as Record<string, unknown>)[fallback] !== 'function'
    ) {
      throw new ConfigError(
        decorator,
        `${where}.fallback`,
        fallback,
        'must name a method of the same class',
      );
    }
    layers.push({ policy, fallback, answers });
  };

  if (policies.retry !== undefined) {
    const { name = where, fallback, ...options } = policies.retry;
    add('@Retry', state.policy('retries', name, ownOptions(options), where), fallback);
  }
  if (policies.breaker !== undefined) {
    const { breaker, fallback, answers } = breakerLayer(state, where, policies.breaker);
    add('@CircuitBreaker', breaker, fallback, answers);
  }
  policies.rateLimits?.forEach((options, index) => {
    add('@RateLimit', methodLimiter(state, where, options, index), undefined);
  });
  if (policies.timeout !== undefined) {
    const { name = where, fallback, ...options } = policies.timeout;
    const own = ownOptions(options);
    requireOptions(state, '@Timeout', 'timeouts', name, own, where, 'timeoutMs');
    add('@Timeout', state.policy('timeouts', name, own as { timeoutMs: number }, where), fallback);
  }
  if (policies.bulkhead !== undefined) {
    const { name = where, fallback, ...options } = policies.bulkhead;
    const own = ownOptions(options);
    requireOptions(state, '@Bulkhead', 'bulkheads', name, own, where, 'maxConcurrent');
    add(
      '@Bulkhead',
      state.policy('bulkheads', name, own as { maxConcurrent: number }, where),
      fallback,
    );
  }

  let step: Step = (call, signal) => {
    try {
      return Promise.resolve(call.attempt(signal!));
    } catch (error) {
      return Promise.reject(error);
    }
  };
  for (let i = layers.length - 1; i >= 0; i--) step = wrapStep(layers[i]!, step);
  const run = step;

  const returnType = Reflect.getMetadata('design:returntype', owner, key) as unknown;
  if (
    returnType === Observable ||
    (typeof returnType === 'function' && returnType.prototype instanceof Observable)
  ) {
    return { app, invoke: (self, args) => observableCall(run, original, self, args, where) };
  }
  return {
    app,
    invoke: (self, args) => run(new PromiseCall(self, args, original, where), undefined),
  };
}

/** A call of a method that returns a Promise or a value: each attempt calls the method again. */
class PromiseCall implements Call {
  constructor(
    readonly self: unknown,
    readonly args: unknown[],
    private readonly original: Method,
    private readonly where: string,
  ) {}

  attempt(): unknown {
    const result = this.original.apply(this.self, this.args);
    if (isObservable(result)) throw new TypeError(`${this.where} ${OBSERVABLE}`);
    return result;
  }

  settle(value: unknown): unknown {
    return value;
  }
}

function wrapStep(layer: Layer, next: Step): Step {
  const { policy, fallback, answers } = layer;
  const through: Step = (call, signal) => policy.execute((s) => next(call, s), signal);
  if (fallback === undefined) return through;
  return (call, signal) =>
    through(call, signal).catch((error: unknown) => {
      if (!answers(error)) throw error;
      const method = (call.self as Record<string, Method>)[fallback]!;
      return call.settle(method.apply(call.self, [...call.args, error]));
    });
}

/**
 * The breaker of `@CircuitBreaker()`: from the registry, with the decorator's options under the
 * module's per-name options. Unless `isFailure` is given, an `HttpException` below 500 and a
 * refusal of the rate limit or bulkhead inside the breaker are ignored: neither says anything
 * about the health of what the method calls.
 */
function breakerLayer(
  state: BreakwaterState,
  where: string,
  options: CircuitBreakerDecoratorOptions,
): { breaker: PolicyLike; fallback: string | undefined; answers: (error: unknown) => boolean } {
  const { name = where, fallback, ...breakerOptions } = options;
  const merged = { ...breakerOptions, ...state.breakerOptions[name] };
  const given = merged.isFailure ?? state.breakerDefaults.isFailure;
  if (given === undefined) merged.isFailure = countsAgainstBreaker;
  const breaker = nestedDecorator('@CircuitBreaker', where, () => state.registry.get(name, merged));
  // The fallback answers what the breaker counts, and an open circuit.
  const isFailure = typeof given === 'function' ? given : countsAgainstBreaker;
  const answers = (error: unknown): boolean => {
    if (isCircuitOpenError(error)) return true;
    try {
      return isFailure(error);
    } catch {
      return true;
    }
  };
  return { breaker, fallback, answers };
}

/** `@RateLimit()` on a provider method: every call counts under one key, like resilience4j's. */
function methodLimiter(
  state: BreakwaterState,
  where: string,
  options: RateLimitOptions,
  index: number,
): RateLimiter {
  const { key, skip, cost, headers } = options;
  const hooks = { key, skip, cost, headers };
  for (const hook of Object.keys(hooks) as (keyof typeof hooks)[]) {
    if (hooks[hook] !== undefined) {
      throw new ConfigError(
        '@RateLimit',
        `${where}.${hook}`,
        hooks[hook],
        'only applies to routes (RateLimitGuard); a provider method counts every call',
      );
    }
  }
  return decoratorLimiter(state, where, options, index);
}

/** The decorator's own policy options, `undefined` when it gives none (a name only). */
function ownOptions<T extends object>(options: T): T | undefined {
  return Object.keys(options).length === 0 ? undefined : options;
}

function requireOptions(
  state: BreakwaterState,
  decorator: string,
  kind: 'timeouts' | 'bulkheads',
  name: string,
  own: object | undefined,
  where: string,
  required: string,
): void {
  if (own === undefined && !state.configures(kind, name)) {
    throw new ConfigError(
      decorator,
      `${where}.${required}`,
      undefined,
      `is required unless the name ("${name}") is configured in BreakwaterModule (${kind})`,
    );
  }
}

/**
 * Calls the method once and returns an Observable whose every subscription runs through the
 * policies: each attempt subscribes to the method's Observable, values are passed on as they
 * come, and unsubscribing aborts the call's signal, which ends the attempt's subscription.
 */
function observableCall(
  run: Step,
  original: Method,
  self: unknown,
  args: unknown[],
  where: string,
): Observable<unknown> {
  const source = original.apply(self, args);
  if (!isObservable(source)) {
    return new Observable((subscriber) => {
      subscriber.error(
        new TypeError(`${where} is declared to return an Observable but returned ${typeof source}`),
      );
    });
  }
  return new Observable((subscriber) => {
    const controller = new AbortController();
    let done = false;
    const forward = (observable: Observable<unknown>, signal: AbortSignal): Promise<void> =>
      subscribeUntil(observable, signal, (value) => subscriber.next(value));
    const call: Call = {
      self,
      args,
      attempt: (signal) => forward(source, signal),
      settle: (value) =>
        isObservable(value) ? forward(value, controller.signal) : subscriber.next(value),
    };
    run(call, controller.signal).then(
      () => {
        done = true;
        subscriber.complete();
      },
      (error: unknown) => {
        done = true;
        subscriber.error(error);
      },
    );
    return () => {
      if (!done) controller.abort();
    };
  });
}

/** Subscribes to `observable` until it completes, errors, or `signal` aborts (which unsubscribes). */
function subscribeUntil(
  observable: Observable<unknown>,
  signal: AbortSignal,
  next: (value: unknown) => void,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    let settled = false;
    const finish = (): void => {
      settled = true;
      signal.removeEventListener('abort', onAbort);
    };
    const subscription = observable.subscribe({
      next,
      error: (error: unknown) => {
        finish();
        reject(error);
      },
      complete: () => {
        finish();
        resolve();
      },
    });
    function onAbort(): void {
      if (settled) return;
      finish();
      subscription.unsubscribe();
      reject(signal.reason);
    }
    if (!settled) signal.addEventListener('abort', onAbort, { once: true });
  });
}

function countsAgainstBreaker(error: unknown): boolean {
  return !(isClientError(error) || isRateLimitError(error) || isBulkheadFullError(error));
}

function notClientError(error: unknown): boolean {
  return !isClientError(error);
}
