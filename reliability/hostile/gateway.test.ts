import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createGateway, type Gateway } from '../../examples/express-gateway/src/gateway';
import {
  seededRandom,
  startInventory,
  startPlantId,
  startWeather,
  type InventoryUpstream,
  type PlantIdUpstream,
  type WeatherUpstream,
} from '../../examples/express-gateway/src/upstreams';
import { close, listen, send, sendRaw, type Listening } from '../support/http';
import { drive, percentile } from '../support/load';
import { LONG } from '../support/paths';
import { report } from '../support/report';

/**
 * The example gateway (examples/express-gateway), as deployed: hostile requests against its API,
 * then a bounded load while its upstreams misbehave (plant-id crashing and recovering, inventory
 * slow, the weather quota spent). Nothing may answer 500 or hang, no upstream error text may
 * reach a client, and the circuits must follow the upstreams.
 */

const DAY_MS = 86_400_000;
const LOAD_MS = LONG ? 120_000 : 6_000;

let plantId: PlantIdUpstream;
let weather: WeatherUpstream;
let inventory: InventoryUpstream;
let gateway: Gateway;
let served: Listening;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  const random = seededRandom(11);
  plantId = await startPlantId(random);
  weather = await startWeather({ remaining: 1_000_000, resetsInMs: DAY_MS }, random);
  inventory = await startInventory({ slowShare: 0, slowMs: 0 }, random);
  gateway = createGateway({
    upstreams: { 'plant-id': plantId.url, weather: weather.url, inventory: inventory.url },
    openDurationMs: 300,
    clientRate: { limit: 1_000_000, windowMs: 1_000 },
    weatherFreshMs: 0,
  });
  served = await listen((req, res) => {
    gateway.app(req, res);
  });
});

afterAll(async () => {
  await close(served.server);
  await gateway.close();
  await Promise.all([plantId.close(), weather.close(), inventory.close()]);
  process.off('unhandledRejection', onUnhandled);
});

describe('the example gateway', () => {
  it('answers hostile requests with 4xx, never echoing them into headers', async () => {
    const cases: [string, Record<string, string>, number][] = [
      ['/api/plants/identify?image=../../etc/passwd', {}, 400],
      ['/api/plants/identify?image=%00', {}, 400],
      ['/api/plants/identify?image=a&image=b', {}, 400],
      ['/api/plants/identify', {}, 400],
      [`/api/weather/${'x'.repeat(5_000)}`, {}, 400],
      ['/api/weather/%3Cscript%3E', {}, 400],
      ['/api/inventory/..%2F..%2Fadmin', {}, 400],
      ['/api/inventory/%E0%A4%A', {}, 400],
      ['/api/inventory/POT-12', { 'x-api-key': 'k'.repeat(10_000) }, 200],
      ['/api/inventory/POT-12', { 'x-request-id': `evil ${'x'.repeat(2_000)}` }, 200],
      ['/nowhere/../../etc/passwd', {}, 404],
    ];
    for (const [path, headers, status] of cases) {
      const reply = await send(`${served.url}${path}`, { headers });
      expect([path.slice(0, 40), reply.status]).toEqual([path.slice(0, 40), status]);
      expect(reply.body).not.toContain('root:');
      const echoed = reply.headers['x-request-id'];
      if (echoed !== undefined) expect(String(echoed)).not.toContain('evil');
    }
    const smuggled = await sendRaw(
      served.port,
      'GET /api/inventory/POT-12 HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\r\n b\r\n\r\n',
    );
    expect(smuggled.status).toBe(400);
  });

  it(
    'keeps every answer bounded and every upstream error out of the bodies while upstreams misbehave',
    async () => {
      const paths = [
        '/api/plants/identify?image=monstera-01',
        '/api/weather/Paris',
        '/api/inventory/POT-12',
      ];
      const loads = paths.map((path) =>
        drive(`${served.url}${path}`, { workers: 3, timeoutMs: 5_000 }),
      );
      const transitions: string[] = [];
      const off = gateway.registry.on('stateChange', ({ breaker, to }) =>
        transitions.push(`${breaker}:${to}`),
      );
      const flap = setInterval(() => {
        plantId.mode = plantId.mode === 'healthy' ? 'failing' : 'healthy';
      }, 750);
      try {
        await new Promise((resolve) => setTimeout(resolve, LOAD_MS / 3));
        inventory.slowShare = 1;
        inventory.slowMs = 400; // beyond its 250 ms timeout
        weather.setQuota(0, 2_000); // 429 with Retry-After: the circuit opens for that long
        await new Promise((resolve) => setTimeout(resolve, LOAD_MS / 3));
        inventory.slowShare = 0;
        weather.setQuota(1_000_000, DAY_MS);
        await new Promise((resolve) => setTimeout(resolve, LOAD_MS / 3));
      } finally {
        clearInterval(flap);
        off();
        plantId.mode = 'healthy';
      }
      const results = await Promise.all(loads.map((load) => load.stop()));
      const rows = results.map((samples, i) => {
        const count = (status: number): number => samples.filter((s) => s.status === status).length;
        const statuses = [...new Set(samples.map((s) => s.status))].sort();
        // Upstream failures become 502/503/504 problems; nothing is a 500 or left hanging.
        for (const status of statuses)
          expect([paths[i], [200, 502, 503, 504].includes(status)]).toEqual([paths[i], true]);
        return {
          route: paths[i]!,
          requests: samples.length,
          statuses: statuses.map((s) => `${s}: ${count(s)}`).join(', '),
          'p50 / p99 / max ms': `${percentile(
            samples.map((s) => s.ms),
            50,
          ).toFixed(1)} / ${percentile(
            samples.map((s) => s.ms),
            99,
          ).toFixed(1)} / ${Math.max(...samples.map((s) => s.ms)).toFixed(1)}`,
        };
      });
      expect(transitions).toEqual(
        expect.arrayContaining(['plant-id:open', 'inventory:open', 'weather:open']),
      );
      expect(unhandled).toEqual([]);
      // No upstream error text in what clients get.
      for (const path of paths) {
        const reply = await send(`${served.url}${path}`);
        expect(reply.body).not.toMatch(/model server|daily quota|Error: |at .*\.ts:\d+/);
      }
      report('example-gateway', rows);
    },
    LOAD_MS + 30_000,
  );
});
