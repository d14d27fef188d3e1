import { describe, expect, it, jest } from '@jest/globals';
import {
  BulkheadFullError,
  CircuitOpenError,
  ConfigError,
  RateLimitError,
  TimeoutError,
  isBulkheadFullError,
  isCircuitOpenError,
  isConfigError,
  isRateLimitError,
  isTimeoutError,
  isBreakwaterError,
} from './errors';

describe('errors', () => {
  it('carries stable codes', () => {
    expect(new CircuitOpenError('a', 5).code).toBe('ECIRCUITOPEN');
    expect(new TimeoutError(10).code).toBe('ETIMEDOUT');
    expect(new RateLimitError(1, 2, 0).code).toBe('ERATELIMITED');
    expect(new BulkheadFullError(1, 0).code).toBe('EBULKHEADFULL');
    expect(new ConfigError('X', 'a.b', 1, 'must be y').code).toBe('EBADCONFIG');
  });

  it('guards recognise each kind and nothing else', () => {
    const open = CircuitOpenError.create('plant-id', 1000);
    expect(isCircuitOpenError(open)).toBe(true);
    expect(isTimeoutError(open)).toBe(false);
    expect(isTimeoutError(new TimeoutError(1))).toBe(true);
    expect(isRateLimitError(new RateLimitError(1, 1, 0))).toBe(true);
    expect(isBulkheadFullError(new BulkheadFullError(1, 1))).toBe(true);
    expect(isConfigError(new ConfigError('X', 'p', 1, 'bad'))).toBe(true);
    for (const v of [null, undefined, 'ECIRCUITOPEN', { code: 'ECIRCUITOPEN' }, new Error('x')]) {
      expect(isCircuitOpenError(v)).toBe(false);
      expect(isBreakwaterError(v)).toBe(false);
    }
  });

  it('guards work for errors from a second copy of the module', () => {
    jest.isolateModules(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const copy = require('./errors') as typeof import('./errors');
      const foreign = copy.CircuitOpenError.create('x', 1);
      expect(foreign).not.toBeInstanceOf(CircuitOpenError);
      expect(isCircuitOpenError(foreign)).toBe(true);
    });
  });

  it('CircuitOpenError.create captures no stack frames and is serialisable', () => {
    const error = CircuitOpenError.create('plant-id', 1500);
    expect(error.stack?.split('\n').length).toBe(1);
    expect(error.breaker).toBe('plant-id');
    expect(JSON.parse(JSON.stringify({ ...error, message: error.message }))).toMatchObject({
      breaker: 'plant-id',
      retryAfterMs: 1500,
      code: 'ECIRCUITOPEN',
    });
    expect(Error.stackTraceLimit).toBeGreaterThan(0);
  });

  it('ConfigError names the owner, the option path and the value', () => {
    const error = new ConfigError(
      'CircuitBreaker',
      'halfOpen.maxConcurrent',
      -1,
      'must be an integer >= 1',
    );
    expect(error.message).toBe(
      'CircuitBreaker: option "halfOpen.maxConcurrent" must be an integer >= 1, got -1',
    );
    expect(error.path).toBe('halfOpen.maxConcurrent');
    expect(error.value).toBe(-1);
  });
});

describe('error names and stacks', () => {
  it('every error reports its own name, in its message line and its stack', () => {
    expect(new TimeoutError(5).name).toBe('TimeoutError');
    expect(String(new RateLimitError(1, 1, 0, 'api'))).toBe(
      'RateLimitError: Rate limit "api" exceeded',
    );
    expect(new ConfigError('X', 'p', 1, 'bad').stack).toMatch(
      /^ConfigError: X: option "p" bad, got 1\n\s+at /,
    );
    const open = CircuitOpenError.create('plant-id', 10);
    expect(open).toBeInstanceOf(CircuitOpenError);
    expect(open).toBeInstanceOf(Error);
    expect(String(open)).toBe('CircuitOpenError: Circuit "plant-id" is open');
    expect(open.stack).toBe('CircuitOpenError: Circuit "plant-id" is open');
    open.stack = 'replaced';
    expect(open.stack).toBe('replaced');
    expect(new CircuitOpenError('a', 1).stack).toMatch(/\n\s+at /);
  });
});
