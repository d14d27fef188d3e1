import { Inject, Injectable } from '@nestjs/common';
import { CircuitBreaker } from '@breakwater/nestjs';
import { APP_OPTIONS, type ResolvedAppOptions } from './app-options';
import { PLANT_ID, ProviderError, isInfrastructureFailure, postJson } from './provider-error';
import type { Suggestion } from './suggestion';

interface PlantIdAnswer {
  result?: {
    classification?: {
      suggestions?: {
        name?: unknown;
        probability?: unknown;
        details?: { common_names?: unknown };
      }[];
    };
  };
}

/**
 * Client of the paid Plant.id-like API. Its breaker is strict, to stop burning the monthly quota
 * during an outage: open after 3 consecutive failures, for 60 s, then 2 probe successes to close.
 */
@Injectable()
export class PlantIdClient {
  // No decorator metadata when the app is bundled by esbuild: inject by token, not by type.
  constructor(@Inject(APP_OPTIONS) private readonly options: ResolvedAppOptions) {}

  /**
   * The species the API sees in `image`.
   * @throws ProviderError (a 404 means no plant found: a business answer, not counted)
   * @throws CircuitOpenError while the circuit is open
   */
  @CircuitBreaker({
    name: PLANT_ID,
    failureThreshold: 3,
    openDurationMs: '60s',
    halfOpen: { successThreshold: 2 },
    isFailure: isInfrastructureFailure,
  })
  async identify(image: Buffer): Promise<Suggestion[]> {
    const answer = (await postJson(
      PLANT_ID,
      `${this.options.plantIdUrl}/v3/identification`,
      { images: [image.toString('base64')] },
      { 'api-key': this.options.apiKey },
      this.options.plantIdTimeoutMs,
    )) as PlantIdAnswer;
    const suggestions = answer.result?.classification?.suggestions;
    if (!Array.isArray(suggestions)) throw new ProviderError(PLANT_ID, 200, 'unexpected answer');
    return suggestions.flatMap((s) => {
      if (typeof s.name !== 'string' || typeof s.probability !== 'number') return [];
      const common: unknown = Array.isArray(s.details?.common_names)
        ? (s.details.common_names as unknown[])[0]
        : undefined;
      return [
        {
          scientificName: s.name,
          commonName: typeof common === 'string' ? common : undefined,
          family: undefined,
          probability: s.probability,
        },
      ];
    });
  }
}
