type Listener<E> = (event: E) => void;
type Stored = Listener<never> | Listener<never>[];

/**
 * Listener storage for an event map: nothing is allocated until someone listens, a single
 * listener is stored bare, and a listener that throws never breaks the caller.
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
    try {
      listener(payload);
    } catch (error) {
      try {
        this.onListenerError?.(error, String(event));
      } catch {
        // A failing error hook must not break the call either.
      }
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
