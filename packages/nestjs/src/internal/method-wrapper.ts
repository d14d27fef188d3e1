/**
 * Replaces a prototype method, once per process, by a wrapper that calls through the binding
 * of the application the instance belongs to. Bindings are per application so that two Nest
 * applications in one process (tests, hybrid set-ups) never share breakers.
 * @internal
 */

type AnyMethod = (this: unknown, ...args: unknown[]) => unknown;

/** How one application calls one decorated method. */
export interface MethodBinding {
  /** The application (its explorer) the binding belongs to. */
  readonly app: object;
  invoke(self: unknown, args: unknown[]): unknown;
}

interface WrapState {
  readonly original: AnyMethod;
  readonly bindings: MethodBinding[];
}

/** Own property set on singleton instances: the application they belong to. */
const APP = Symbol('breakwater.app');
const states = new WeakMap<AnyMethod, WrapState>();

/**
 * Wraps `owner[key]` (an own method of a prototype) unless it is already wrapped, copying the
 * metadata of the original (route, guards, ...) onto the wrapper. Returns the state to bind to.
 */
export function wrapMethod(owner: object, key: string): WrapState {
  const descriptor = Object.getOwnPropertyDescriptor(owner, key);
  const current = descriptor?.value as AnyMethod | undefined;
  if (descriptor === undefined || typeof current !== 'function') {
    throw new TypeError(`${key} is not a method`);
  }
  const existing = states.get(current);
  if (existing !== undefined) return existing;

  const original = current;
  const bindings: MethodBinding[] = [];
  const wrapper = function (this: unknown, ...args: unknown[]): unknown {
    const count = bindings.length;
    if (count === 0) return original.apply(this, args);
    let binding = bindings[count - 1]!;
    if (count > 1 && typeof this === 'object' && this !== null) {
      const app = (this as Record<symbol, unknown>)[APP];
      if (app !== undefined && app !== binding.app) {
        binding = bindings.find((b) => b.app === app) ?? binding;
      }
    }
    return binding.invoke(this, args);
  };
  Object.defineProperty(wrapper, 'name', { value: original.name, configurable: true });
  for (const metadataKey of Reflect.getMetadataKeys(original) as unknown[]) {
    Reflect.defineMetadata(metadataKey, Reflect.getMetadata(metadataKey, original), wrapper);
  }
  const state: WrapState = { original, bindings };
  states.set(wrapper, state);
  Object.defineProperty(owner, key, { ...descriptor, value: wrapper });
  return state;
}

/** Adds an application's binding to a wrapped method; returns the function that removes it. */
export function bind(state: WrapState, binding: MethodBinding): () => void {
  state.bindings.push(binding);
  return () => {
    const index = state.bindings.indexOf(binding);
    if (index !== -1) state.bindings.splice(index, 1);
  };
}

/** Marks a singleton instance as belonging to `app` (best effort: frozen objects are skipped). */
export function tagInstance(instance: object, app: object): void {
  if (Object.isExtensible(instance) || Object.prototype.hasOwnProperty.call(instance, APP)) {
    Object.defineProperty(instance, APP, { value: app, configurable: true, writable: true });
  }
}

/** The prototype in `instance`'s chain that owns the method `key`. */
export function ownerOf(prototype: object, key: string): object | undefined {
  for (
    let p: object | null = prototype;
    p !== null;
    p = Object.getPrototypeOf(p) as object | null
  ) {
    if (Object.prototype.hasOwnProperty.call(p, key)) return p;
  }
  return undefined;
}
