/** The protected call of every case: an async function that resolves at once. */
export const work = async (): Promise<number> => 42;

/** Throws with `message` unless `condition` holds (case sanity checks, not timing assertions). */
export function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/** Runs `fn` and returns what it rejected with; throws if it resolved. */
export async function rejection(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection, the call resolved');
}
