import type { Group } from '../harness';
import { breakerClosed } from './breaker-closed';
import { breakerMemory } from './breaker-memory';
import { breakerOpen } from './breaker-open';
import { floor } from './floor';
import { http } from './http';
import { metrics } from './metrics';
import { overload } from './overload';
import { policies } from './policies';
import { rateLimit } from './rate-limit';
import { rateLimitRedis } from './rate-limit-redis';

/**
 * Every group, in the order they run and print. A group only compares with cases of its own
 * or of an earlier group. To add one, write src/groups/<name>.ts exporting a Group and list it
 * here.
 */
export const groups: readonly Group[] = [
  floor,
  breakerClosed,
  breakerOpen,
  breakerMemory,
  policies,
  rateLimit,
  rateLimitRedis,
  metrics,
  http,
  overload,
];
