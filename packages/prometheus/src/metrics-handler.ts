import type { HttpResponse } from '@breakwater/core';
import { register as defaultRegister } from 'prom-client';
import type { PrometheusRegistry } from './collect-metrics';
import { checkRegister } from './internal/check-register';

/**
 * A framework-agnostic `/metrics` handler: each call scrapes `register` and returns the response
 * to write (status 200 with the registry's content type, or 500 without details when a collector
 * fails).
 *
 * @param register - the registry to expose. @defaultValue prom-client's `register`
 * @throws ConfigError when `register` is not a prom-client registry
 * @example
 * ```ts
 * const metrics = metricsHandler();
 * app.get('/metrics', async (_req, res) => {
 *   const { status, headers, body } = await metrics();
 *   res.status(status).set(headers).send(body);
 * });
 * ```
 */
export function metricsHandler(register?: PrometheusRegistry): () => Promise<HttpResponse> {
  const target =
    register === undefined ? defaultRegister : checkRegister('metricsHandler', register);
  return async () => {
    try {
      const body = await target.metrics();
      return {
        kind: 'response',
        status: 200,
        headers: { 'content-type': target.contentType, 'cache-control': 'no-store' },
        body,
      };
    } catch {
      return {
        kind: 'response',
        status: 500,
        headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' },
        body: 'metrics collection failed\n',
      };
    }
  };
}
