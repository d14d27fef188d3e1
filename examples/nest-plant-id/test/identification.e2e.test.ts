import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { Server } from 'node:http';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { CircuitBreakerRegistry } from '@breakwater/core';
import request from 'supertest';
import { AppModule, configureApp } from '../src/app.module';
import type { IdentificationResult } from '../src/identification.service';
import { PLANT_ID, PLANTNET, ProviderError, isInfrastructureFailure } from '../src/provider-error';
import { ScenarioClock } from '../src/scenario-clock';
import {
  SIMULATED_API_KEY,
  startPlantIdApi,
  startPlantNetApi,
  type SimulatedProvider,
} from '../src/simulated-providers';

// The application on the Express platform, in front of the two simulated providers (real HTTP
// servers on loopback). Time is a clock frozen at T0 that the tests move.

const T0 = 1_800_000_000_000;

let plantId: SimulatedProvider;
let plantNet: SimulatedProvider;
let app: INestApplication;
let clock: ScenarioClock;
let registry: CircuitBreakerRegistry;

beforeAll(async () => {
  // Quotas large enough for every test: these servers live for the whole file.
  plantId = await startPlantIdApi(100_000);
  plantNet = await startPlantNetApi(100_000);
});

afterAll(async () => {
  await Promise.all([plantId.close(), plantNet.close()]);
});

beforeEach(async () => {
  plantId.mode = 'healthy';
  plantNet.mode = 'healthy';
  clock = new ScenarioClock(() => T0);
  const moduleRef = await Test.createTestingModule({
    imports: [
      AppModule.register({
        plantIdUrl: plantId.url,
        plantNetUrl: plantNet.url,
        apiKey: SIMULATED_API_KEY,
        clock,
      }),
    ],
  }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  configureApp(app);
  await app.init();
  registry = app.get(CircuitBreakerRegistry);
});

afterEach(async () => {
  await app.close();
});

let photos = 0;
/** A photo of `plant` no test has sent before (so no cache entry answers it). */
const photo = (plant: string): string =>
  Buffer.from(`photo of a ${plant} leaf, take ${(photos += 1)}`).toString('base64');

const identify = (image: string) =>
  request(app.getHttpServer() as Server)
    .post('/api/identify')
    .send({ image });

const result = (res: { body: unknown }) => res.body as IdentificationResult;

const state = (name: string) => registry.find(name)?.snapshot();

/** Makes `provider` fail and sends `times` identifications of new photos. */
async function failRequests(provider: SimulatedProvider, times: number): Promise<void> {
  provider.mode = 'failing';
  for (let i = 0; i < times; i += 1) await identify(photo('ficus'));
}

describe('POST /api/identify', () => {
  it('answers from both providers, merged, when both are up', async () => {
    const res = await identify(photo('monstera')).expect(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toMatchObject({
      partial: false,
      cached: false,
      providers: { [PLANT_ID]: { status: 'identified' }, [PLANTNET]: { status: 'identified' } },
    });
    expect(result(res).suggestions).toEqual([
      {
        scientificName: 'Monstera deliciosa',
        commonName: 'Swiss cheese plant',
        family: 'Araceae', // only PlantNet knows the family
        probability: 0.97, // the higher of the two
        sources: [PLANT_ID, PLANTNET],
      },
    ]);
  });

  it('answers from the other provider, "partial": true, while one circuit is open', async () => {
    await failRequests(plantId, 3);
    expect(state(PLANT_ID)).toMatchObject({ state: 'open', retryAfterMs: 60_000 });
    const callsWhenOpened = plantId.calls;

    clock.advance(20_000);
    const res = await identify(photo('aloe')).expect(200);
    expect(res.body).toMatchObject({
      partial: true,
      cached: false,
      suggestions: [{ scientificName: 'Aloe vera', sources: [PLANTNET] }],
      providers: {
        [PLANT_ID]: { status: 'circuit open', retryAfterMs: 40_000 },
        [PLANTNET]: { status: 'identified' },
      },
    });
    expect(plantId.calls).toBe(callsWhenOpened); // the open circuit spared the failing API
  });

  it('marks an answer partial while a provider fails, before its circuit opens', async () => {
    plantNet.mode = 'unreachable';
    const res = await identify(photo('pothos')).expect(200);
    expect(res.body).toMatchObject({
      partial: true,
      suggestions: [{ scientificName: 'Epipremnum aureum', sources: [PLANT_ID] }],
      providers: { [PLANTNET]: { status: 'failed', reason: 'unreachable' } },
    });
    expect(state(PLANTNET)).toMatchObject({ state: 'closed', consecutiveFailures: 1 });
  });

  it('answers 503 with Retry-After = the shorter remaining open time once both circuits are open', async () => {
    await failRequests(plantId, 3); // open at T0 for 60 s
    clock.advance(10_000);
    plantNet.mode = 'unreachable';
    for (let i = 0; i < 5; i += 1) {
      // plant-id open, plantnet called and failing: no answer, but no open time to wait for yet
      const failed = await identify(photo('ficus')).expect(502);
      expect(failed.headers['retry-after']).toBeUndefined();
    }
    expect(state(PLANTNET)?.state).toBe('open'); // at T0 + 10 s for 30 s

    const res = await identify(photo('ficus')).expect(503);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.headers['retry-after']).toBe('30'); // plantnet: 30 s left, plant-id: 50 s
    expect(res.body).toMatchObject({
      status: 503,
      retryAfter: 30,
      providers: {
        [PLANT_ID]: { status: 'circuit open', retryAfterMs: 50_000 },
        [PLANTNET]: { status: 'circuit open', retryAfterMs: 30_000 },
      },
    });

    clock.advance(25_000);
    const later = await identify(photo('ficus')).expect(503);
    expect(later.headers['retry-after']).toBe('5'); // plantnet: 5 s left, plant-id: 25 s
  });

  it('takes the Retry-After from whichever circuit reopens first', async () => {
    await failRequests(plantId, 3); // open at T0 for 60 s
    plantId.mode = 'healthy';
    clock.advance(45_000);
    await failRequests(plantNet, 5); // plant-id still open: it is not called
    expect(state(PLANTNET)?.state).toBe('open'); // at T0 + 45 s for 30 s

    const res = await identify(photo('ficus')).expect(503);
    expect(res.headers['retry-after']).toBe('15'); // plant-id: 15 s left, plantnet: 30 s
  });

  it('does not count "no plant found" (a business answer) against either circuit', async () => {
    for (let i = 0; i < 6; i += 1) {
      const res = await identify(photo('pebble')).expect(404);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({
        title: 'Not Found',
        partial: false,
        providers: {
          [PLANT_ID]: { status: 'no plant found' },
          [PLANTNET]: { status: 'no plant found' },
        },
      });
    }
    // 6 answers past both thresholds (3 and 5), and nothing counted.
    expect(state(PLANT_ID)).toMatchObject({ state: 'closed', consecutiveFailures: 0 });
    expect(state(PLANTNET)).toMatchObject({ state: 'closed', consecutiveFailures: 0 });

    // Real failures still count from zero: two are not enough to open plant-id's circuit.
    await failRequests(plantId, 2);
    expect(state(PLANT_ID)).toMatchObject({ state: 'closed', consecutiveFailures: 2 });
  });

  it('answers an image it has seen from the cache, calling no provider', async () => {
    const image = photo('lavender');
    const first = await identify(image).expect(200);
    const calls = [plantId.calls, plantNet.calls];

    const second = await identify(image).expect(200);
    expect(second.body).toEqual({ ...first.body, cached: true });
    expect([plantId.calls, plantNet.calls]).toEqual(calls);

    // Even while both circuits are open.
    await failRequests(plantId, 3);
    await failRequests(plantNet, 5);
    await identify(image).expect(200);
    expect(state(PLANT_ID)?.state).toBe('open');
    expect(state(PLANTNET)?.state).toBe('open');
  });

  it('keeps cache entries for 30 minutes', async () => {
    const image = photo('monstera');
    await identify(image).expect(200);
    clock.advance(30 * 60_000 - 1);
    expect(result(await identify(image).expect(200)).cached).toBe(true);
    clock.advance(1);
    expect(result(await identify(image).expect(200)).cached).toBe(false);
  });

  it('does not cache partial answers', async () => {
    plantId.mode = 'failing';
    const image = photo('aloe');
    await identify(image).expect(200);
    const again = await identify(image).expect(200);
    expect(again.body).toMatchObject({ partial: true, cached: false });

    plantId.mode = 'healthy';
    const full = await identify(image).expect(200);
    expect(full.body).toMatchObject({ partial: false, cached: false });
    expect(result(await identify(image).expect(200)).cached).toBe(true);
  });

  it('closes a circuit after 2 probe successes once its open time is over', async () => {
    await failRequests(plantNet, 5);
    plantNet.mode = 'healthy';
    clock.advance(30_000);
    expect(state(PLANTNET)?.state).toBe('half_open');
    await identify(photo('aloe')).expect(200);
    expect(state(PLANTNET)?.state).toBe('half_open');
    const res = await identify(photo('aloe')).expect(200);
    expect(state(PLANTNET)?.state).toBe('closed');
    expect(result(res).partial).toBe(false);
  });

  it('refuses a body without a base64 image with 400', async () => {
    const server = app.getHttpServer() as Server;
    const calls = plantId.calls + plantNet.calls;
    const missing = await request(server).post('/api/identify').send({}).expect(400);
    expect(missing.headers['content-type']).toMatch(/^application\/problem\+json/);
    await request(server).post('/api/identify').send({ image: 'not base64!' }).expect(400);
    expect(plantId.calls + plantNet.calls).toBe(calls);
  });
});

describe('health', () => {
  const get = (path: string) => request(app.getHttpServer() as Server).get(path);

  it('GET /health (terminus): ok, degraded with one circuit open, 503 with both', async () => {
    const ok = await get('/health').expect(200);
    expect(ok.body).toMatchObject({
      status: 'ok',
      info: {
        'circuit-breakers': {
          status: 'up',
          breakers: { [PLANT_ID]: 'closed', [PLANTNET]: 'closed' },
        },
        identification: { status: 'up' },
      },
    });

    await failRequests(plantId, 3);
    const degraded = await get('/health').expect(200);
    expect(degraded.body).toMatchObject({
      status: 'degraded',
      info: {
        'circuit-breakers': { status: 'degraded', breakers: { [PLANT_ID]: 'open' } },
        identification: { status: 'degraded' },
      },
    });

    await failRequests(plantNet, 5);
    const down = await get('/health').expect(503);
    expect(down.body).toMatchObject({
      status: 'error',
      error: { identification: { status: 'down' } },
    });
  });

  it("serves Breakwater's own health routes and dashboard under /breakwater", async () => {
    await failRequests(plantId, 3);
    const breakers = await get('/breakwater/circuit-breakers').expect(200);
    expect(JSON.stringify(breakers.body)).toContain('"state":"open"');
    await get(`/breakwater/circuit-breakers/${PLANT_ID}`)
      .expect(200)
      .expect((res) => expect(res.body).toMatchObject({ name: PLANT_ID, state: 'open' }));
    await get('/breakwater/live').expect(200);
    await get('/breakwater/ready').expect(200); // no breaker is critical on its own
    const report = await get('/breakwater').expect(200);
    expect(report.headers['content-type']).toMatch(/^application\/health\+json/);
    expect((report.body as { status: unknown }).status).toBe('warn');
    const page = await get('/breakwater/dashboard').expect(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
  });
});

describe('isInfrastructureFailure (the breakers’ isFailure)', () => {
  it('counts outages and quota exhaustion, not business answers', () => {
    const answer = (status: number | undefined) => new ProviderError(PLANT_ID, status, 'x');
    expect(isInfrastructureFailure(answer(undefined))).toBe(true); // unreachable, timed out
    expect(isInfrastructureFailure(answer(500))).toBe(true);
    expect(isInfrastructureFailure(answer(503))).toBe(true);
    expect(isInfrastructureFailure(answer(429))).toBe(true); // quota exhausted
    expect(isInfrastructureFailure(answer(408))).toBe(true);
    expect(isInfrastructureFailure(answer(404))).toBe(false); // no plant found
    expect(isInfrastructureFailure(answer(400))).toBe(false);
    expect(isInfrastructureFailure(new Error('boom'))).toBe(true);
  });
});
