import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { createGateway, type Gateway } from '../src/gateway';
import {
  seededRandom,
  startInventory,
  startPlantId,
  startWeather,
  type InventoryUpstream,
  type PlantIdUpstream,
  type WeatherUpstream,
} from '../src/upstreams';

// The gateway app against the simulated upstreams on loopback. Circuits stay open for a minute,
// so a test that opens one sees it open for as long as it runs; afterEach closes them again.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const DAY_MS = 86_400_000;

let plantId: PlantIdUpstream;
let weather: WeatherUpstream;
let inventory: InventoryUpstream;
let gateway: Gateway;

beforeAll(async () => {
  const random = seededRandom(7);
  plantId = await startPlantId(random);
  weather = await startWeather({ remaining: 1_000, resetsInMs: DAY_MS }, random);
  inventory = await startInventory({ slowShare: 0, slowMs: 0 }, random);
  gateway = createGateway({
    upstreams: { 'plant-id': plantId.url, weather: weather.url, inventory: inventory.url },
    openDurationMs: 60_000,
    clientRate: { limit: 5, windowMs: 60_000 },
    weatherFreshMs: 0,
  });
});

afterEach(() => {
  plantId.mode = 'healthy';
  weather.setQuota(1_000, DAY_MS);
  gateway.registry.resetAll();
});

afterAll(async () => {
  await gateway.close();
  await Promise.all([plantId.close(), weather.close(), inventory.close()]);
});

/** Each test calls as its own client, so the per-client limit of 5 only bites where meant to. */
const as = (client: string) => ({
  get: (path: string) => request(gateway.app).get(path).set('X-Api-Key', client),
});

describe('health routes', () => {
  it('serves liveness, readiness, the health report, the breaker list and the dashboard', async () => {
    await request(gateway.app).get('/health/live').expect(200);
    await request(gateway.app).get('/health/ready').expect(200);

    const health = await request(gateway.app).get('/health').expect(200);
    expect(health.headers['content-type']).toMatch(/^application\/health\+json/);
    const report = JSON.parse(health.text) as { status: string; checks: Record<string, unknown> };
    expect(report.status).toBe('pass');
    expect(Object.keys(report.checks).sort()).toEqual([
      'inventory:circuit',
      'per-client:rate-limit-store',
      'plant-id:circuit',
      'weather:circuit',
    ]);

    const list = await request(gateway.app).get('/health/circuit-breakers').expect(200);
    expect((list.body as { name: string; state: string }[]).map((b) => [b.name, b.state])).toEqual([
      ['plant-id', 'closed'],
      ['weather', 'closed'],
      ['inventory', 'closed'],
    ]);

    const dashboard = await request(gateway.app).get('/health/dashboard').expect(200);
    expect(dashboard.headers['content-type']).toMatch(/^text\/html/);
  });

  it('reports an open critical upstream (inventory) as not ready, a non-critical one as warn', async () => {
    gateway.registry.get('plant-id').openFor(60_000);
    const warn = await request(gateway.app).get('/health').expect(200);
    expect((JSON.parse(warn.text) as { status: string }).status).toBe('warn');
    await request(gateway.app).get('/health/ready').expect(200);

    gateway.registry.get('inventory').openFor(60_000);
    await request(gateway.app).get('/health/ready').expect(503);
    await request(gateway.app).get('/health').expect(503);
  });
});

describe('X-Request-Id', () => {
  it('echoes a well-formed id and forwards it to the upstream', async () => {
    const res = await as('ids')
      .get('/api/inventory/POT-12')
      .set('X-Request-Id', 'order-42.a:1')
      .expect(200);
    expect(res.headers['x-request-id']).toBe('order-42.a:1');
    expect(inventory.lastRequestId).toBe('order-42.a:1');
    expect(res.body).toEqual({
      service: 'inventory',
      degraded: false,
      data: expect.objectContaining({ sku: 'POT-12', requestId: 'order-42.a:1' }),
    });
  });

  it('replaces a malformed id with a new one, and generates one when there is none', async () => {
    const malformed = await as('ids2')
      .get('/api/inventory/POT-20')
      .set('X-Request-Id', 'two words\u00e9')
      .expect(200);
    const replaced = malformed.headers['x-request-id'] as string;
    expect(replaced).toMatch(UUID);
    expect(inventory.lastRequestId).toBe(replaced);

    const none = await as('ids2').get('/api/weather/Lyon').expect(200);
    expect(none.headers['x-request-id']).toMatch(UUID);
    expect(none.headers['x-request-id']).not.toBe(replaced);
    expect(weather.lastRequestId).toBe(none.headers['x-request-id']);
  });

  it('is echoed on answers the gateway gives itself (404)', async () => {
    const res = await request(gateway.app).get('/nowhere').set('X-Request-Id', 'abc').expect(404);
    expect(res.headers['x-request-id']).toBe('abc');
    expect(res.headers['content-type']).toBe('application/problem+json');
  });
});

describe('an upstream that fails', () => {
  it('opens its circuit: 503 with Retry-After, the last good answer marked degraded, no upstream call', async () => {
    const client = as('outage');
    // A good answer to fall back on later.
    const good = await client.get('/api/plants/identify?image=fern-01').expect(200);
    expect(good.body).toMatchObject({ service: 'plant-id', degraded: false });

    plantId.mode = 'failing';
    // Two attempts fail (one retry): 502, two failures counted.
    const failed = await client.get('/api/plants/identify?image=aloe-01').expect(502);
    expect(failed.headers['content-type']).toBe('application/problem+json');
    expect(gateway.registry.get('plant-id').state).toBe('closed');
    // The third failure opens the circuit; the retry finds it open.
    await client.get('/api/plants/identify?image=aloe-02').expect(503);
    expect(gateway.registry.get('plant-id').state).toBe('open');

    const seen = plantId.requests;
    const rejected = await client.get('/api/plants/identify?image=aloe-01').expect(503);
    expect(Number(rejected.headers['retry-after'])).toBeGreaterThanOrEqual(59);
    expect(Number(rejected.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(JSON.parse(rejected.text)).toMatchObject({
      status: 503,
      breaker: 'plant-id',
      detail: 'Circuit breaker "plant-id" is open',
    });

    const fallback = await client.get('/api/plants/identify?image=fern-01').expect(200);
    expect(fallback.body).toEqual({
      service: 'plant-id',
      degraded: true,
      reason: 'circuit open',
      cachedAt: expect.any(String),
      data: (good.body as { data: unknown }).data,
    });
    expect(plantId.requests).toBe(seen); // fail fast: nothing reached the upstream

    const stats = gateway.stats.snapshot()['plant-id'];
    expect(stats.rejected).toBeGreaterThanOrEqual(2);
    expect(stats.fallbacks).toBeGreaterThanOrEqual(1);
  });

  it("honours an upstream's Retry-After: a 429 opens the circuit for that long", async () => {
    const client = as('quota');
    await client.get('/api/weather/Porto').expect(200);
    weather.setQuota(0, 30_000);

    const exhausted = await client.get('/api/weather/Ghent').expect(503);
    const seconds = Number(exhausted.headers['retry-after']);
    expect(seconds).toBeGreaterThanOrEqual(29);
    expect(seconds).toBeLessThanOrEqual(30);
    expect(gateway.registry.get('weather').state).toBe('open');

    const degraded = await client.get('/api/weather/Porto').expect(200);
    expect(degraded.body).toMatchObject({ degraded: true, reason: 'circuit open' });
  });

  it('passes an upstream 404 on without counting it against the breaker', async () => {
    const client = as('not-found');
    for (let i = 0; i < 5; i++) await client.get('/api/inventory/NOPE-1').expect(404);
    expect(gateway.registry.get('inventory').snapshot().consecutiveFailures).toBe(0);
  });

  it('lets an operator reset the circuit from the loopback admin route', async () => {
    gateway.registry.get('plant-id').openFor(60_000);
    await request(gateway.app).post('/health/circuit-breakers/plant-id/reset').expect(200);
    expect(gateway.registry.get('plant-id').state).toBe('closed');
  });
});

describe('per-client rate limit', () => {
  it('answers 429 with Retry-After after the limit, for that client only', async () => {
    const greedy = as('greedy');
    for (let i = 0; i < 5; i++) {
      const ok = await greedy.get('/api/inventory/SOIL-5L').expect(200);
      expect(ok.headers.ratelimit).toBeDefined();
    }
    const before = gateway.stats.snapshot().inventory.rateLimited;
    const refused = await greedy.get('/api/inventory/SOIL-5L').expect(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(refused.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(refused.text)).toMatchObject({ status: 429, limiter: 'per-client' });
    expect(refused.headers['x-request-id']).toMatch(UUID);
    expect(gateway.stats.snapshot().inventory.rateLimited).toBe(before + 1);

    await as('polite').get('/api/inventory/SOIL-5L').expect(200);
  });
});

describe('/metrics', () => {
  it('exposes the breakers, the limiter and the gateway outcomes to Prometheus', async () => {
    await as('metrics').get('/api/inventory/MIST-01').expect(200);
    const res = await request(gateway.app).get('/metrics').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.text).toContain('breakwater_circuit_state{breaker="plant-id",state="closed"} 1');
    expect(res.text).toMatch(
      /breakwater_ratelimit_decisions_total\{limiter="per-client",decision="allowed"\} [1-9]/,
    );
    expect(res.text).toMatch(
      /gateway_requests_total\{service="inventory",outcome="success"\} [1-9]/,
    );
  });
});
