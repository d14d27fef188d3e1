import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { healthReport, type HealthReport, type HealthSources } from '@breakwater/core';
import { BREAKWATER_STATE } from './breakwater.constants';
import type { BreakwaterState } from './internal/breakwater-state';

/** Options of {@link BreakwaterHealthIndicator.breakers}. */
export interface BreakerIndicatorOptions {
  /** Breakers whose open circuit makes the indicator `down`. @defaultValue the module's `health.critical` */
  critical?: HealthSources['critical'];
}

/**
 * A `@nestjs/terminus` health indicator for the breakers and rate-limit stores of
 * `BreakwaterModule`. Breakers: `down` while a critical breaker is open, `degraded` while another
 * one is open or probing. Stores: `degraded` while a limiter answers without its primary store
 * (never `down`: the limiter keeps deciding). Terminus versions without `degraded` report `up`.
 *
 * @example
 * ```ts
 * @Get('health')
 * @HealthCheck()
 * check() {
 *   return this.health.check([
 *     () => this.breakwater.breakers('circuit-breakers', { critical: ['payments'] }),
 *     () => this.breakwater.rateLimiters(),
 *   ]);
 * }
 * ```
 */
@Injectable()
export class BreakwaterHealthIndicator {
  constructor(
    private readonly healthIndicatorService: HealthIndicatorService,
    @Inject(BREAKWATER_STATE) private readonly state: BreakwaterState,
  ) {}

  /** The breakers' states as `{ breakers: { name: state } }`. */
  breakers<const Key extends string = 'circuit-breakers'>(
    key: Key = 'circuit-breakers' as Key,
    options: BreakerIndicatorOptions = {},
  ): HealthIndicatorResult<Key> {
    const critical = options.critical ?? this.state.critical;
    const report = healthReport({ registry: this.state.registry, critical });
    return this.result(key, report, 'breakers');
  }

  /** Where each limiter decides from, as `{ limiters: { name: 'primary' | 'fallback' } }`. */
  rateLimiters<const Key extends string = 'rate-limit-stores'>(
    key: Key = 'rate-limit-stores' as Key,
  ): HealthIndicatorResult<Key> {
    const report = healthReport({ limiters: this.state.reporters });
    return this.result(key, report, 'limiters');
  }

  private result<Key extends string>(
    key: Key,
    report: HealthReport,
    member: string,
  ): HealthIndicatorResult<Key> {
    const values: Record<string, string> = {};
    for (const checks of Object.values(report.checks)) {
      for (const check of checks) values[check.componentId] = check.observedValue;
    }
    const data = { [member]: values };
    const session = this.healthIndicatorService.check(key);
    if (report.status === 'fail') return session.down(data);
    const degraded = (session as { degraded?: unknown }).degraded;
    if (report.status === 'warn' && typeof degraded === 'function') return session.degraded(data);
    return session.up(data);
  }
}
