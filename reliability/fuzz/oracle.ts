import type { KnownTree } from './arbitraries';
import type { Root } from './targets';

function ownKeys(value: unknown): string[] {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return [];
  return Object.keys(value);
}

/**
 * Whether `rest` (a path such as `halfOpen.maxConcurrent`, `stores[1]` or `breakers.a.b.size`,
 * whose keys may themselves contain dots) names something inside `value`: every key exists, or all
 * but the last exist and the last is an option the level knows (a required option left out).
 */
function names(value: unknown, known: KnownTree | true | undefined, rest: string): boolean {
  const tree = known === true ? undefined : known;
  const list = Array.isArray(value);
  for (const key of ownKeys(value)) {
    // An element of an array is `[1]`, or `1` where an array stood in for an options object.
    for (const token of list ? [`[${key}]`, key] : [key]) {
      if (!rest.startsWith(token)) continue;
      const after = rest.slice(token.length);
      const child = (value as Record<string, unknown>)[key];
      const childKnown = list ? undefined : (tree?.[key] ?? tree?.['*']);
      if (after === '') return true;
      if (after.startsWith('.') && names(child, childKnown, after.slice(1))) return true;
      if (after.startsWith('[') && names(child, childKnown, after)) return true;
    }
  }
  // A required option left out: the last key is known here and the level is an options object.
  const leaf = !rest.includes('.') && !rest.includes('[');
  return (
    leaf &&
    tree !== undefined &&
    Object.prototype.hasOwnProperty.call(tree, rest) &&
    (value === undefined || (typeof value === 'object' && value !== null && !Array.isArray(value)))
  );
}

/** Whether a `ConfigError` path names an option of the input, resolved against any root. */
export function namesInputOption(path: string, roots: readonly Root[]): boolean {
  return roots.some((root) => names(root.value, root.known, path));
}

/** A short description of a thrown value for a failure message. */
export function describeThrown(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return typeof error === 'symbol' ? error.toString() : String(error);
}
