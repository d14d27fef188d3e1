import type { Group } from '../harness';
import { work } from '../work';

/** Built once, so the rejection row measures the await and the catch, not the error. */
const prebuilt = new Error('prebuilt');
const rejecting = (): Promise<never> => Promise.reject(prebuilt);

const wrap = async <T>(fn: () => Promise<T>): Promise<T> => await fn();

/** What any async call costs: the floor every wrapper is measured against. */
export const floor: Group = {
  name: 'floor',
  description:
    'bare `await fn()`, the smallest async wrapper `async (fn) => await fn()`, and what awaiting a ' +
    'rejection and catching it costs (no error created).',
  setup: () => ({
    cases: [
      {
        id: 'await-fn',
        label: 'await fn()',
        library: 'node',
        kind: 'async',
        baseline: true,
        fn: work,
      },
      {
        id: 'async-wrapper',
        label: 'minimal async wrapper',
        library: 'node',
        kind: 'async',
        fn: () => wrap(work),
      },
      {
        id: 'await-rejection',
        label: 'await rejected promise, prebuilt error (catch)',
        library: 'node',
        kind: 'async',
        expect: 'reject',
        fn: rejecting,
      },
    ],
  }),
};
