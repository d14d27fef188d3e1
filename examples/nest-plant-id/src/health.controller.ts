import { Controller, Get, Inject, Injectable } from '@nestjs/common';
import {
  HealthCheck,
  HealthCheckService,
  HealthIndicatorService,
  type HealthIndicatorResult,
} from '@nestjs/terminus';
import { CircuitBreakerRegistry } from '@breakwater/core';
import { BreakwaterHealthIndicator } from '@breakwater/nestjs/terminus';
import { PLANT_ID, PLANTNET } from './provider-error';

/**
 * Whether identification as a whole works: `down` only while every provider's circuit is open,
 * since one provider is enough for a (partial) answer.
 */
@Injectable()
export class IdentificationHealthIndicator {
  constructor(
    @Inject(HealthIndicatorService) private readonly indicators: HealthIndicatorService,
    @Inject(CircuitBreakerRegistry) private readonly registry: CircuitBreakerRegistry,
  ) {}

  check<const Key extends string>(key: Key): HealthIndicatorResult<Key> {
    const providers: Record<string, string> = {};
    let serving = 0;
    for (const name of [PLANT_ID, PLANTNET]) {
      const state = this.registry.find(name)?.state ?? 'closed';
      providers[name] = state;
      if (state !== 'open' && state !== 'forced_open') serving += 1;
    }
    const session = this.indicators.check(key);
    if (serving === 0) return session.down({ providers });
    if (serving === 1) return session.degraded({ providers });
    return session.up({ providers });
  }
}

/**
 * `GET /health` through `@nestjs/terminus`: 200 `ok` while both providers serve, 200 `degraded`
 * while one circuit is open or probing, 503 `error` while both circuits are open.
 */
@Controller('health')
export class HealthController {
  constructor(
    @Inject(HealthCheckService) private readonly health: HealthCheckService,
    @Inject(BreakwaterHealthIndicator) private readonly breakwater: BreakwaterHealthIndicator,
    @Inject(IdentificationHealthIndicator)
    private readonly identification: IdentificationHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([
      () => this.breakwater.breakers('circuit-breakers'),
      () => this.identification.check('identification'),
    ]);
  }
}
