type Listener<E> = (event: E) => void;
type Stored = Listener<never> | Listener<never>[];

/**
 * Listener storage for an event map: nothing is allocated until someone listens, a single
 * listener is stored bare, and a listener that throws, or returns a promise that rejects, never
 * breaks the caller: the error goes to `onListenerError`.
 */
export class Listeners<Events extends object> {
  private readonly byEvent: Partial<Record<keyof Events, Stored>> = {};

  constructor(private readonly onListenerError?: (error: unknown, event: string) => void) {}

  has(event: keyof Events): boolean {
    return this.byEvent[event] !== undefined;
  }

  add<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    const current: Stored | undefined = this.byEvent[event];
    if (current === undefined) this.byEvent[event] = listener;
    else if (typeof current === 'function') this.byEvent[event] = [current, listener];
    else this.byEvent[event] = [...current, listener];
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      this.remove(event, listener);
    };
  }

  emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const current = this.byEvent[event] as Listener<Events[K]> | Listener<Events[K]>[] | undefined;
    if (current === undefined) return;
    if (typeof current === 'function') {
      this.call(event, current, payload);
      return;
    }
    for (const listener of current) this.call(event, listener, payload);
  }

  private call<K extends keyof Events>(
    event: K,
    listener: Listener<Events[K]>,
    payload: Events[K],
  ): void {
    let returned: unknown;
    try {
      returned = listener(payload);
    } catch (error) {
      reportHookError(this.onListenerError, error, String(event));
      return;
    }
    if (isThenable(returned)) {
      returned.then(undefined, (error: unknown) =>
        reportHookError(this.onListenerError, error, String(event)),
      );
    }
  }

  private remove<K extends keyof Events>(event: K, listener: Listener<Events[K]>): void {
    const current: Stored | undefined = this.byEvent[event];
    if (current === listener) {
      delete this.byEvent[event];
    } else if (Array.isArray(current)) {
      const index = current.indexOf(listener);
      if (index === -1) return;
      const rest = current.filter((_, i) => i !== index);
      this.byEvent[event] = rest.length === 1 ? rest[0] : rest;
    }
  }
}

/**
 * Hands a hook's error to `onError`; an `onError` that throws or rejects is ignored, so a hook
 * error never reaches the caller and never becomes an unhandled rejection.
 */
export function reportHookError(
  onError: ((error: unknown, hook: string) => unknown) | undefined,
  error: unknown,
  hook: string,
): void {
  if (onError === undefined) return;
  try {
    const returned = onError(error, hook);
    if (isThenable(returned)) returned.then(undefined, ignore);
  } catch {
    // A failing error hook must not break the call either.
  }
}

/** Whether `value` has a `then` method (a promise or a promise-like). */
export function isThenable<T = unknown>(value: unknown): value is PromiseLike<T> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

function ignore(): void {}
