import { describe, expect, it } from '@jest/globals';
import { isConfigError } from '@breakwater/core';
import { BreakwaterModule } from './breakwater.module';

function pathOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return isConfigError(error) ? error.path : error;
  }
  return 'no error';
}

describe('BreakwaterModule option checks', () => {
  const useFactory = (): object => ({});

  it('forRoot rejects a health or health.path of the wrong type', () => {
    expect(pathOf(() => BreakwaterModule.forRoot({ health: null as never }))).toBe('health');
    expect(pathOf(() => BreakwaterModule.forRoot({ health: { path: 5 as never } }))).toBe(
      'health.path',
    );
    expect(BreakwaterModule.forRoot({ health: {} }).controllers).toHaveLength(1);
  });

  it.each([
    ['healthPath', { healthPath: null }],
    ['healthPath', { healthPath: 5 }],
    ['breakerNames', { breakerNames: 'payments' }],
    ['limiterNames', { limiterNames: {} }],
    ['imports', { imports: 5 }],
    ['inject', { inject: 'x' }],
    ['useFactory', { useFactory: 5 }],
    ['useClass', { useFactory: undefined, useClass: {} }],
    ['unknown', { unknown: true }],
    ['isGlobal', { isGlobal: 'yes' }],
  ])('forRootAsync names %s', (path, extra) => {
    expect(pathOf(() => BreakwaterModule.forRootAsync({ useFactory, ...extra } as never))).toBe(
      path,
    );
  });

  it('is global unless isGlobal is false, and names a bad isGlobal', () => {
    expect(BreakwaterModule.forRoot().global).toBe(true);
    expect(BreakwaterModule.forRoot({ isGlobal: false }).global).toBe(false);
    expect(BreakwaterModule.forRootAsync({ useFactory, isGlobal: false }).global).toBe(false);
    expect(pathOf(() => BreakwaterModule.forRoot({ isGlobal: 1 as never }))).toBe('isGlobal');
  });

  it('forRootAsync accepts well-typed options', () => {
    const module = BreakwaterModule.forRootAsync({
      useFactory,
      imports: [],
      inject: [],
      healthPath: 'ops/health',
      breakerNames: ['a'],
      limiterNames: ['b'],
    });
    expect(module.module).toBe(BreakwaterModule);
    expect(module.controllers).toHaveLength(1);
  });
});
