import { isConfigError } from '@breakwater/core';
import { describeThrown, namesInputOption } from './oracle';
import { disposeAll, type Args, type Target } from './targets';

/** The longest delay a Node.js timer can hold; a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2_147_483_647;

const oversizedTimers: number[] = [];
const realSetTimeout = globalThis.setTimeout;
const realSetInterval = globalThis.setInterval;

/**
 * Records every timer armed with a delay Node would cut to 1 ms (then arms it as asked), until
 * {@link unwatchTimers}.
 */
export function watchTimers(): void {
  const watch = <F extends typeof setTimeout | typeof setInterval>(real: F): F =>
    ((callback: () => void, delay?: number, ...rest: unknown[]) => {
      if (typeof delay === 'number' && delay > MAX_TIMER_MS) oversizedTimers.push(delay);
      return (real as (...a: unknown[]) => unknown)(callback, delay, ...rest);
    }) as unknown as F;
  globalThis.setTimeout = watch(realSetTimeout);
  globalThis.setInterval = watch(realSetInterval);
}

/** Puts the real timer functions back. */
export function unwatchTimers(): void {
  globalThis.setTimeout = realSetTimeout;
  globalThis.setInterval = realSetInterval;
}

/**
 * Builds and exercises one input of `subject`; rejects with an Error describing any misbehaviour:
 * an exception other than a `ConfigError`, a `ConfigError` whose path names no option of the
 * input, an object that does not work, or a timer armed for longer than Node can wait.
 */
export async function judge(subject: Target, args: Args): Promise<void> {
  const timersBefore = oversizedTimers.length;
  try {
    let made: unknown;
    try {
      made = subject.build(args);
    } catch (error) {
      if (!isConfigError(error)) {
        throw new Error(`${subject.name} threw ${describeThrown(error)}, not a ConfigError`, {
          cause: error,
        });
      }
      if (!namesInputOption(error.path, subject.roots(args))) {
        throw new Error(
          `${subject.name}: ConfigError path "${error.path}" names no option of the input (${error.message})`,
        );
      }
      return;
    }
    try {
      await subject.exercise(made, args);
    } catch (error) {
      throw new Error(
        `${subject.name} built an object that does not work: ${describeThrown(error)}`,
        { cause: error },
      );
    }
  } finally {
    await disposeAll();
  }
  const armed = oversizedTimers.slice(timersBefore);
  if (armed.length > 0) {
    throw new Error(
      `${subject.name} accepted a duration it cannot wait for: it armed a timer of ${armed[0]} ms, which Node fires after 1 ms`,
    );
  }
}
