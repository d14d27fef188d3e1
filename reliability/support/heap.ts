import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let collect: (() => void) | undefined;

/**
 * Forces a full garbage collection. Jest cannot pass `--expose-gc` to its workers, so the flag is
 * set at run time and `gc` is taken from a fresh context, where V8 installs it.
 */
export function forceGc(): void {
  if (collect === undefined) {
    const exposed = (globalThis as { gc?: () => void }).gc;
    if (typeof exposed === 'function') collect = exposed;
    else {
      setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as () => void;
    }
  }
  collect();
  collect();
}

/** Heap in use after a full collection, in bytes. */
export function settledHeapUsed(): number {
  forceGc();
  return process.memoryUsage().heapUsed;
}

/** Bytes as MB with one decimal, for reports. */
export function mb(bytes: number): string {
  return `${(bytes / 1_048_576).toFixed(1)} MB`;
}
