/**
 * Simulated upstream services, each a small node:http server on a free loopback port:
 *
 * - `plant-id`: a paid identification API (POST /v1/identify), which an operator can make fail;
 * - `weather`: a free forecast API (GET /v1/forecast?city=) with a daily quota, answering 429
 *   with `Retry-After` once the quota is used up;
 * - `inventory`: an internal stock service (GET /v1/items/:sku), now and then slow.
 *
 * Every answer echoes the `X-Request-Id` it received, so the correlation ID can be followed.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A random number generator in [0, 1). */
export type Random = () => number;

/** A small seeded generator (mulberry32), so that a run can be repeated. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** What every simulated upstream has: its URL, the requests it saw, and a way to stop it. */
export interface Upstream {
  readonly name: string;
  readonly url: string;
  /** Requests answered so far (every status). */
  readonly requests: number;
  /** The `X-Request-Id` of the last request. */
  readonly lastRequestId: string | undefined;
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, url: URL, body: string) => Promise<Reply> | Reply;

interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  delayMs?: number;
}

/** Adds the properties of `extra` to `base`, accessors included (Object.assign would call them). */
function extend<B extends object, E extends object>(base: B, extra: E): B & E {
  return Object.defineProperties(base, Object.getOwnPropertyDescriptors(extra)) as B & E;
}

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms).unref());

async function startServer(name: string, handler: Handler): Promise<Upstream> {
  let requests = 0;
  let lastRequestId: string | undefined;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      requests++;
      const id = req.headers['x-request-id'];
      lastRequestId = typeof id === 'string' ? id : undefined;
      const url = new URL(req.url ?? '/', 'http://upstream');
      Promise.resolve(handler(req, url, Buffer.concat(chunks).toString('utf8')))
        .then(async (reply) => {
          if (reply.delayMs !== undefined && reply.delayMs > 0) await sleep(reply.delayMs);
          if (res.destroyed) return;
          const payload =
            typeof reply.body === 'object' && reply.body !== null
              ? { ...reply.body, requestId: lastRequestId }
              : reply.body;
          res.writeHead(reply.status, {
            'content-type': 'application/json',
            ...(lastRequestId === undefined ? {} : { 'x-request-id': lastRequestId }),
            ...reply.headers,
          });
          res.end(JSON.stringify(payload));
        })
        .catch(() => {
          if (!res.headersSent) res.writeHead(500);
          res.end();
        });
    });
  });
  // Keep-alive sockets of the gateway's fetch must not hold the process open.
  server.keepAliveTimeout = 2_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    get requests() {
      return requests;
    },
    get lastRequestId() {
      return lastRequestId;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const SPECIES: Record<string, [species: string, commonName: string]> = {
  monstera: ['Monstera deliciosa', 'Swiss cheese plant'],
  ficus: ['Ficus lyrata', 'Fiddle-leaf fig'],
  rose: ['Rosa gallica', 'French rose'],
  fern: ['Nephrolepis exaltata', 'Boston fern'],
  basil: ['Ocimum basilicum', 'Basil'],
  aloe: ['Aloe vera', 'Aloe'],
};

/** The paid identification API. */
export interface PlantIdUpstream extends Upstream {
  /** `'failing'`: every identification answers 500 (a crashed model server). */
  mode: 'healthy' | 'failing';
}

/** Starts the simulated plant-identification API. */
export async function startPlantId(random: Random = Math.random): Promise<PlantIdUpstream> {
  let mode: PlantIdUpstream['mode'] = 'healthy';
  const upstream = await startServer('plant-id', (req, url, body) => {
    if (req.method !== 'POST' || url.pathname !== '/v1/identify') {
      return { status: 404, body: { error: 'not found' } };
    }
    const delayMs = 40 + Math.floor(random() * 80);
    if (mode === 'failing') {
      return { status: 500, body: { error: 'model server unavailable' }, delayMs: 20 };
    }
    let image = '';
    try {
      const given = (JSON.parse(body) as { image?: unknown }).image;
      image = typeof given === 'string' ? given : '';
    } catch {
      return { status: 400, body: { error: 'body must be JSON' } };
    }
    const known = SPECIES[image.replace(/-\d+$/, '')];
    if (known === undefined)
      return { status: 404, body: { error: `no plant in ${image}` }, delayMs };
    const [species, commonName] = known;
    const confidence = Math.round((0.82 + random() * 0.17) * 100) / 100;
    return { status: 200, body: { image, species, commonName, confidence }, delayMs };
  });
  return extend(upstream, {
    get mode() {
      return mode;
    },
    set mode(value: PlantIdUpstream['mode']) {
      mode = value;
    },
  });
}

/** The free forecast API with a daily quota. */
export interface WeatherUpstream extends Upstream {
  /** Calls left in the current day. */
  readonly quotaRemaining: number;
  /** Sets what is left of the quota and when the day (and so the quota) starts again. */
  setQuota(remaining: number, resetsInMs: number): void;
}

const CONDITIONS = ['sunny', 'cloudy', 'light rain', 'showers', 'overcast', 'clear'] as const;

/**
 * Starts the simulated forecast API. Once `remaining` calls are used up it answers 429 with
 * `Retry-After` (whole seconds to the quota reset), like most free APIs.
 */
export async function startWeather(
  quota: { remaining: number; resetsInMs: number },
  random: Random = Math.random,
): Promise<WeatherUpstream> {
  let remaining = quota.remaining;
  let resetAt = Date.now() + quota.resetsInMs;
  const upstream = await startServer('weather', (req, url) => {
    if (req.method !== 'GET' || url.pathname !== '/v1/forecast') {
      return { status: 404, body: { error: 'not found' } };
    }
    const now = Date.now();
    if (now >= resetAt) {
      remaining = quota.remaining;
      resetAt = now + quota.resetsInMs;
    }
    if (remaining <= 0) {
      const seconds = Math.max(1, Math.ceil((resetAt - now) / 1_000));
      return {
        status: 429,
        body: { error: 'daily quota exceeded' },
        headers: { 'retry-after': String(seconds) },
      };
    }
    remaining--;
    const city = url.searchParams.get('city') ?? 'Paris';
    const tempC = Math.round((8 + random() * 18) * 10) / 10;
    const conditions = CONDITIONS[Math.floor(random() * CONDITIONS.length)]!;
    return {
      status: 200,
      body: { city, tempC, conditions, observedAt: new Date(now).toISOString() },
      delayMs: 15 + Math.floor(random() * 30),
    };
  });
  return extend(upstream, {
    get quotaRemaining() {
      return remaining;
    },
    setQuota(left: number, resetsInMs: number) {
      remaining = left;
      resetAt = Date.now() + resetsInMs;
    },
  });
}

/** The internal stock service. */
export interface InventoryUpstream extends Upstream {
  /** Share of requests (0–1) that take `slowMs` instead of a few milliseconds. */
  slowShare: number;
  slowMs: number;
}

const ITEMS: Record<string, string> = {
  'POT-12': 'Terracotta pot, 12 cm',
  'POT-20': 'Terracotta pot, 20 cm',
  'SOIL-5L': 'Potting soil, 5 l',
  'FEED-250': 'Liquid plant feed, 250 ml',
  'MIST-01': 'Plant mister',
};

/** Starts the simulated inventory service. */
export async function startInventory(
  options: { slowShare: number; slowMs: number },
  random: Random = Math.random,
): Promise<InventoryUpstream> {
  const state = { slowShare: options.slowShare, slowMs: options.slowMs };
  const upstream = await startServer('inventory', (req, url) => {
    const match = /^\/v1\/items\/([^/]+)$/.exec(url.pathname);
    if (req.method !== 'GET' || match === null)
      return { status: 404, body: { error: 'not found' } };
    const sku = decodeURIComponent(match[1]!);
    const name = ITEMS[sku];
    if (name === undefined) return { status: 404, body: { error: `unknown sku ${sku}` } };
    const slow = random() < state.slowShare;
    return {
      status: 200,
      body: { sku, name, inStock: Math.floor(random() * 40) },
      delayMs: slow ? state.slowMs : 3 + Math.floor(random() * 10),
    };
  });
  return extend(upstream, {
    get slowShare() {
      return state.slowShare;
    },
    set slowShare(value: number) {
      state.slowShare = value;
    },
    get slowMs() {
      return state.slowMs;
    },
    set slowMs(value: number) {
      state.slowMs = value;
    },
  });
}

/** The image names and SKUs the simulators know, for traffic generators and tests. */
export const KNOWN_IMAGES: readonly string[] = Object.keys(SPECIES).flatMap((plant) => [
  `${plant}-01`,
  `${plant}-02`,
]);
export const KNOWN_SKUS: readonly string[] = Object.keys(ITEMS);
export const CITIES: readonly string[] = ['Lyon', 'Porto', 'Utrecht', 'Ghent'];
