import { Inject, Injectable } from '@nestjs/common';
import { CircuitBreaker } from '@breakwater/nestjs';
import { APP_OPTIONS, type ResolvedAppOptions } from './app-options';
import { PLANTNET, ProviderError, isInfrastructureFailure, postJson } from './provider-error';
import type { Suggestion } from './suggestion';

interface PlantNetAnswer {
  results?: {
    score?: unknown;
    species?: {
      scientificNameWithoutAuthor?: unknown;
      commonNames?: unknown;
      family?: { scientificNameWithoutAuthor?: unknown };
    };
  }[];
}

/**
 * Client of the free PlantNet-like API. Its breaker is more tolerant, since a failed call costs
 * nothing: open after 5 consecutive failures, for 30 s, then 2 probe successes to close.
 */
@Injectable()
export class PlantNetClient {
  // No decorator metadata when the app is bundled by esbuild: inject by token, not by type.
  constructor(@Inject(APP_OPTIONS) private readonly options: ResolvedAppOptions) {}

  /**
   * The species the API sees in `image`.
   * @throws ProviderError (a 404 means no plant found: a business answer, not counted)
   * @throws CircuitOpenError while the circuit is open
   */
  @CircuitBreaker({
    name: PLANTNET,
    failureThreshold: 5,
    openDurationMs: '30s',
    halfOpen: { successThreshold: 2 },
    isFailure: isInfrastructureFailure,
  })
  async identify(image: Buffer): Promise<Suggestion[]> {
    const key = encodeURIComponent(this.options.apiKey);
    const answer = (await postJson(
      PLANTNET,
      `${this.options.plantNetUrl}/v2/identify/all?api-key=${key}`,
      { images: [image.toString('base64')] },
      {},
      this.options.plantNetTimeoutMs,
    )) as PlantNetAnswer;
    if (!Array.isArray(answer.results)) throw new ProviderError(PLANTNET, 200, 'unexpected answer');
    return answer.results.flatMap((r) => {
      const name = r.species?.scientificNameWithoutAuthor;
      if (typeof name !== 'string' || typeof r.score !== 'number') return [];
      const common: unknown = Array.isArray(r.species?.commonNames)
        ? (r.species.commonNames as unknown[])[0]
        : undefined;
      const family = r.species?.family?.scientificNameWithoutAuthor;
      return [
        {
          scientificName: name,
          commonName: typeof common === 'string' ? common : undefined,
          family: typeof family === 'string' ? family : undefined,
          probability: r.score,
        },
      ];
    });
  }
}
