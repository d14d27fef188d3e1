import { Inject, Injectable } from '@nestjs/common';
import { isCircuitOpenError } from '@breakwater/core';
import { PlantIdClient } from './plant-id.client';
import { PlantNetClient } from './plantnet.client';
import { PLANT_ID, PLANTNET, ProviderError, type ProviderName } from './provider-error';
import { ResultCache } from './result-cache';
import type { Suggestion } from './suggestion';

/** What one provider contributed to an answer. */
export type ProviderStatus =
  /** It answered with at least one species. */
  | { status: 'identified' }
  /** It answered, and found no plant in the image (a business answer). */
  | { status: 'no plant found' }
  /** Its circuit is open: it was not called. */
  | { status: 'circuit open'; retryAfterMs: number }
  /** It was called and failed (HTTP 5xx, refused, timed out, ...). */
  | { status: 'failed'; reason: string };

/** A species with the providers that suggested it. */
export interface MergedSuggestion extends Suggestion {
  /** Providers that suggested it; `probability` is the highest of theirs. */
  sources: ProviderName[];
}

/** An answer: from both providers, or `partial` from the one that could answer. */
export interface IdentificationResult {
  /** SHA-256 of the image, the cache key. */
  imageHash: string;
  /** Best first; empty when no provider found a plant. */
  suggestions: MergedSuggestion[];
  /** True when a provider could not answer: its circuit is open or its call failed. */
  partial: boolean;
  /** True when the answer comes from the cache (no provider was called). */
  cached: boolean;
  providers: Record<ProviderName, ProviderStatus>;
}

/** The outcome of an identification. */
export type Identification =
  | { kind: 'answered'; result: IdentificationResult }
  | {
      /** No provider could answer. */
      kind: 'unavailable';
      /**
       * When every circuit is open: the shorter of their remaining open times (the first moment
       * a provider may be called again). Undefined when a provider was called and failed.
       */
      retryAfterMs: number | undefined;
      providers: Record<ProviderName, ProviderStatus>;
    };

/**
 * Identifies plants with both providers at once, each behind its own circuit breaker (on the
 * clients' methods). One provider down: the other's answer, marked `partial`. Both down: no
 * answer, with the shorter remaining open time when both circuits are open. Complete answers are
 * cached by image hash; partial ones are not, so the next upload gets the full answer once the
 * provider is back.
 */
@Injectable()
export class IdentificationService {
  // Injected by token: esbuild, which bundles `pnpm start`, emits no decorator metadata.
  constructor(
    @Inject(PlantIdClient) private readonly plantId: PlantIdClient,
    @Inject(PlantNetClient) private readonly plantNet: PlantNetClient,
    @Inject(ResultCache) private readonly cache: ResultCache<IdentificationResult>,
  ) {}

  /** Identifies the plant in `image`. Never rejects for a provider's failure. */
  async identify(image: Buffer): Promise<Identification> {
    const imageHash = ResultCache.keyOf(image);
    const hit = this.cache.get(imageHash);
    if (hit !== undefined) return { kind: 'answered', result: { ...hit, cached: true } };

    const [fromPlantId, fromPlantNet] = await Promise.allSettled([
      this.plantId.identify(image),
      this.plantNet.identify(image),
    ]);
    const outcomes = [outcome(PLANT_ID, fromPlantId), outcome(PLANTNET, fromPlantNet)] as const;
    const providers: Record<ProviderName, ProviderStatus> = {
      [PLANT_ID]: outcomes[0].status,
      [PLANTNET]: outcomes[1].status,
    };

    const answered = outcomes.filter((o) => o.suggestions !== undefined);
    if (answered.length === 0) {
      const open = outcomes.map((o) => o.status).filter(isCircuitOpen);
      const retryAfterMs =
        open.length === outcomes.length ? Math.min(...open.map((s) => s.retryAfterMs)) : undefined;
      return { kind: 'unavailable', retryAfterMs, providers };
    }

    const result: IdentificationResult = {
      imageHash,
      suggestions: merge(answered),
      partial: answered.length < outcomes.length,
      cached: false,
      providers,
    };
    if (!result.partial) this.cache.set(imageHash, result);
    return { kind: 'answered', result };
  }
}

type CircuitOpenStatus = Extract<ProviderStatus, { status: 'circuit open' }>;

const isCircuitOpen = (status: ProviderStatus): status is CircuitOpenStatus =>
  status.status === 'circuit open';

interface Outcome {
  provider: ProviderName;
  status: ProviderStatus;
  /** Defined when the provider answered (empty: no plant found). */
  suggestions: Suggestion[] | undefined;
}

function outcome(provider: ProviderName, settled: PromiseSettledResult<Suggestion[]>): Outcome {
  if (settled.status === 'fulfilled') {
    const suggestions = settled.value;
    const status: ProviderStatus =
      suggestions.length > 0 ? { status: 'identified' } : { status: 'no plant found' };
    return { provider, status, suggestions };
  }
  const error: unknown = settled.reason;
  if (error instanceof ProviderError && error.noPlantFound) {
    return { provider, status: { status: 'no plant found' }, suggestions: [] };
  }
  if (isCircuitOpenError(error)) {
    return {
      provider,
      status: { status: 'circuit open', retryAfterMs: error.retryAfterMs },
      suggestions: undefined,
    };
  }
  const reason = error instanceof Error ? error.message : 'failed';
  return { provider, status: { status: 'failed', reason }, suggestions: undefined };
}

/** One entry per species, the highest probability kept, best first. */
function merge(answered: readonly Outcome[]): MergedSuggestion[] {
  const bySpecies = new Map<string, MergedSuggestion>();
  for (const { provider, suggestions = [] } of answered) {
    for (const suggestion of suggestions) {
      const known = bySpecies.get(suggestion.scientificName);
      if (known === undefined) {
        bySpecies.set(suggestion.scientificName, { ...suggestion, sources: [provider] });
        continue;
      }
      known.sources.push(provider);
      known.probability = Math.max(known.probability, suggestion.probability);
      known.commonName ??= suggestion.commonName;
      known.family ??= suggestion.family;
    }
  }
  return [...bySpecies.values()].sort((a, b) => b.probability - a.probability);
}
