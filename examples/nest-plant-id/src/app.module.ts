import { Module, type DynamicModule, type INestApplication } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { TerminusModule } from '@nestjs/terminus';
import {
  BreakwaterExceptionFilter,
  BreakwaterModule,
  type HttpRequestLike,
} from '@breakwater/nestjs';
import { BreakwaterHealthIndicator } from '@breakwater/nestjs/terminus';
import { APP_OPTIONS, resolveAppOptions, type PlantIdAppOptions } from './app-options';
import { HealthController, IdentificationHealthIndicator } from './health.controller';
import { IdentificationController, MAX_IMAGE_BYTES } from './identification.controller';
import { IdentificationService, type IdentificationResult } from './identification.service';
import { PlantIdClient } from './plant-id.client';
import { PlantNetClient } from './plantnet.client';
import { ResultCache } from './result-cache';

/** Where Breakwater's own health routes and dashboard live (terminus has `/health`). */
export const BREAKWATER_HEALTH_PATH = '/breakwater';

/**
 * The plant identification application: `POST /api/identify`, terminus at `/health`, and
 * Breakwater's health routes and live dashboard under `/breakwater`.
 */
@Module({})
export class AppModule {
  /**
   * The module for the given providers and clock.
   * @throws ConfigError when an option is invalid
   */
  static register(options: PlantIdAppOptions): DynamicModule {
    const resolved = resolveAppOptions(options);
    return {
      module: AppModule,
      imports: [
        TerminusModule.forRoot({ logger: false }),
        BreakwaterModule.forRoot({
          // Every breaker of the app reads this clock: the scripted run moves it by hand.
          breakers: { clock: resolved.clock },
          health: {
            path: BREAKWATER_HEALTH_PATH,
            // The dashboard's reset buttons, for callers on this machine only.
            admin: { authorize: (req: HttpRequestLike) => isLoopback(req.ip) },
          },
        }),
      ],
      controllers: [IdentificationController, HealthController],
      providers: [
        { provide: APP_OPTIONS, useValue: resolved },
        {
          provide: ResultCache,
          useValue: new ResultCache<IdentificationResult>(
            resolved.clock,
            resolved.cacheTtlMs,
            resolved.cacheMaxEntries,
          ),
        },
        PlantIdClient,
        PlantNetClient,
        IdentificationService,
        BreakwaterHealthIndicator,
        IdentificationHealthIndicator,
        { provide: APP_FILTER, useClass: BreakwaterExceptionFilter },
      ],
    };
  }
}

/** Platform settings the app needs: JSON bodies large enough for a photo in base64. */
export function configureApp(app: INestApplication): void {
  const limit = Math.ceil((MAX_IMAGE_BYTES * 4) / 3) + 1_024;
  (app as NestExpressApplication).useBodyParser('json', { limit });
}

function isLoopback(ip: string | undefined): boolean {
  return ip === '127.0.0.1' || ip === '::1' || ip === '::ffff:127.0.0.1';
}
