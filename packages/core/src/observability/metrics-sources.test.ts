import { describe, expect, it, jest } from '@jest/globals';
import { isConfigError } from '../errors';
import { bulkhead } from '../policies/bulkhead';
import { fallback } from '../policies/fallback';
import { retry } from '../policies/retry';
import { timeout } from '../policies/timeout';
import {
  instrumentedPolicyKind,
  listenToPolicy,
  loadShedGauges,
  policiesOption,
  type InstrumentablePolicy,
} from './metrics-sources';

function configPath(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isConfigError(error)) return error.path;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('metrics sources', () => {
  it("recognises core's policies by kind and takes anything else for a load shedder", () => {
    expect(instrumentedPolicyKind(retry())).toBe('retry');
    expect(instrumentedPolicyKind(fallback(1))).toBe('fallback');
    expect(instrumentedPolicyKind(bulkhead({ maxConcurrent: 1 }))).toBe('bulkhead');
    expect(instrumentedPolicyKind(timeout(10))).toBe('timeout');
    expect(instrumentedPolicyKind({ on: () => undefined })).toBe('load_shed');
    expect(instrumentedPolicyKind({ kind: 'other', on: () => undefined })).toBe('load_shed');
  });

  it('checks the policies option', () => {
    expect(policiesOption('x', undefined)).toEqual([]);
    expect(configPath(() => policiesOption('x', []))).toBe('policies');
    expect(configPath(() => policiesOption('x', { '': retry() }))).toBe('policies');
    expect(configPath(() => policiesOption('x', { ['n'.repeat(201)]: retry() }))).toBe('policies');
    expect(configPath(() => policiesOption('x', { a: null }))).toBe('policies.a');
    expect(policiesOption('x', { a: retry() }).map(([name]) => name)).toEqual(['a']);
  });

  it('subscribes through on(), skips optional events a policy refuses, and unsubscribes all', () => {
    const offs = new Map<string, () => void>();
    const policy: InstrumentablePolicy & { on(event: string): () => void } = {
      on(event: string) {
        if (event === 'limitChanged') throw new Error('unknown event');
        const off = jest.fn();
        offs.set(event, off);
        return off;
      },
    };
    const off = listenToPolicy(
      'x',
      'shed',
      policy,
      { rejected: () => undefined, limitChanged: () => undefined },
      ['limitChanged'],
    );
    expect([...offs.keys()]).toEqual(['rejected']);
    off();
    expect(offs.get('rejected')).toHaveBeenCalledTimes(1);
  });

  it('refuses a required event with a ConfigError, leaving nothing subscribed', () => {
    const off = jest.fn();
    const policy = {
      on(event: string) {
        if (event === 'giveUp') throw new Error('unknown event');
        return off;
      },
    };
    expect(
      configPath(() =>
        listenToPolicy('x', 'r', policy, { retry: () => undefined, giveUp: () => undefined }),
      ),
    ).toBe('policies.r');
    expect(off).toHaveBeenCalledTimes(1);
  });

  it('reads finite limit and inFlight from a snapshot, and nothing from a broken one', () => {
    const on = (): undefined => undefined;
    expect(loadShedGauges({ on, snapshot: () => ({ limit: 8, inFlight: 3 }) })).toEqual({
      limit: 8,
      inFlight: 3,
    });
    expect(loadShedGauges({ on, snapshot: () => ({ limit: NaN, inFlight: '3' }) })).toEqual({
      limit: undefined,
      inFlight: undefined,
    });
    expect(
      loadShedGauges({
        on,
        snapshot: () => {
          throw new Error('x');
        },
      }),
    ).toEqual({ limit: undefined, inFlight: undefined });
    expect(loadShedGauges({ on })).toEqual({ limit: undefined, inFlight: undefined });
  });
});
