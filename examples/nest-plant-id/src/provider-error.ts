/**
 * What the identification clients throw, and which of it counts against a provider's circuit.
 */

/** The two identification providers, as named in the breaker registry and in answers. */
export type ProviderName = 'plant-id' | 'plantnet';

/** Breaker name of the paid Plant.id-like provider. */
export const PLANT_ID = 'plant-id' satisfies ProviderName;
/** Breaker name of the free PlantNet-like provider. */
export const PLANTNET = 'plantnet' satisfies ProviderName;

/**
 * A provider call that did not return suggestions: an HTTP error answer (`status` set) or no
 * answer at all (`status` undefined: refused, reset, timed out).
 */
export class ProviderError extends Error {
  override readonly name = 'ProviderError';

  constructor(
    readonly provider: ProviderName,
    readonly status: number | undefined,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** The provider looked at the image and found no plant in it. */
  get noPlantFound(): boolean {
    return this.status === 404;
  }
}

/**
 * The breakers' `isFailure`: an infrastructure failure counts against the circuit, a business
 * answer does not. A 4xx answer (no plant found, an image the provider refuses) means the
 * provider works; only 408 (timed out) and 429 (quota exhausted: calling again burns nothing
 * but time) say it cannot serve us now.
 */
export function isInfrastructureFailure(error: unknown): boolean {
  if (!(error instanceof ProviderError) || error.status === undefined) return true;
  const business = error.status >= 400 && error.status < 500;
  return !business || error.status === 408 || error.status === 429;
}

/**
 * POSTs `body` as JSON and returns the parsed JSON answer.
 * @throws ProviderError for a non-2xx answer, a network error or after `timeoutMs`
 */
export async function postJson(
  provider: ProviderName,
  url: string,
  body: unknown,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    const timedOut = error instanceof DOMException && error.name === 'TimeoutError';
    throw new ProviderError(
      provider,
      undefined,
      timedOut ? `no answer within ${timeoutMs} ms` : 'unreachable',
      { cause: error },
    );
  }
  const text = await response.text().catch(() => '');
  if (!response.ok) {
    throw new ProviderError(provider, response.status, `HTTP ${response.status}${detail(text)}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ProviderError(provider, response.status, 'answer is not JSON', { cause: error });
  }
}

function detail(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: unknown; message?: unknown };
    const message = parsed.error ?? parsed.message;
    return typeof message === 'string' ? ` (${message})` : '';
  } catch {
    return '';
  }
}
