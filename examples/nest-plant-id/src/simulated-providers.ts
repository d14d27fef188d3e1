/**
 * The two identification APIs, simulated in-process on loopback HTTP servers: a paid Plant.id-like
 * API with a monthly quota and a free PlantNet-like API with a daily one. An "image" is any bytes;
 * the simulators recognise a plant when the bytes contain one of the catalogue's keywords (the
 * demo's images are short texts such as `photo of a monstera leaf #3`).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** How a simulated provider behaves right now. */
export type ProviderMode =
  /** Answers normally. */
  | 'healthy'
  /** Answers every identification with HTTP 500. */
  | 'failing'
  /** Resets every connection without an answer. */
  | 'unreachable';

/** One simulated provider: its URL, a switch for its behaviour, and what it has seen. */
export interface SimulatedProvider {
  readonly url: string;
  mode: ProviderMode;
  /** Identification requests received (whatever the answer). */
  readonly calls: number;
  /** Quota units used: identifications answered with 200 or 404. */
  readonly quotaUsed: number;
  readonly quota: number;
  close(): Promise<void>;
}

interface Species {
  keyword: string;
  scientificName: string;
  commonName: string;
  family: string;
  /** Confidence of the two providers. */
  plantId: number;
  plantNet: number;
}

const CATALOGUE: readonly Species[] = [
  {
    keyword: 'monstera',
    scientificName: 'Monstera deliciosa',
    commonName: 'Swiss cheese plant',
    family: 'Araceae',
    plantId: 0.97,
    plantNet: 0.91,
  },
  {
    keyword: 'ficus',
    scientificName: 'Ficus lyrata',
    commonName: 'Fiddle-leaf fig',
    family: 'Moraceae',
    plantId: 0.94,
    plantNet: 0.87,
  },
  {
    keyword: 'pothos',
    scientificName: 'Epipremnum aureum',
    commonName: 'Golden pothos',
    family: 'Araceae',
    plantId: 0.92,
    plantNet: 0.84,
  },
  {
    keyword: 'snake plant',
    scientificName: 'Dracaena trifasciata',
    commonName: 'Snake plant',
    family: 'Asparagaceae',
    plantId: 0.95,
    plantNet: 0.9,
  },
  {
    keyword: 'aloe',
    scientificName: 'Aloe vera',
    commonName: 'Aloe vera',
    family: 'Asphodelaceae',
    plantId: 0.96,
    plantNet: 0.93,
  },
  {
    keyword: 'lavender',
    scientificName: 'Lavandula angustifolia',
    commonName: 'English lavender',
    family: 'Lamiaceae',
    plantId: 0.9,
    plantNet: 0.95,
  },
];

/** The API key the simulated Plant.id API expects (the client sends it). */
export const SIMULATED_API_KEY = 'demo-key';

/** Starts the Plant.id-like API: `POST /v3/identification`, header `Api-Key`, monthly quota. */
export function startPlantIdApi(quota = 100): Promise<SimulatedProvider> {
  return startProvider(quota, (req, body) => {
    if (req.url !== '/v3/identification') return answer(404, { error: 'not found' });
    if (req.headers['api-key'] !== SIMULATED_API_KEY)
      return answer(401, { error: 'invalid api key' });
    const species = recognise(body);
    if (species === undefined) return answer(404, { error: 'no plant found' }, true);
    return answer(
      200,
      {
        result: {
          is_plant: { binary: true },
          classification: {
            suggestions: [
              {
                name: species.scientificName,
                probability: species.plantId,
                details: { common_names: [species.commonName] },
              },
            ],
          },
        },
      },
      true,
    );
  });
}

/** Starts the PlantNet-like API: `POST /v2/identify/all?api-key=...`, daily quota. */
export function startPlantNetApi(quota = 500): Promise<SimulatedProvider> {
  return startProvider(quota, (req, body) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/v2/identify/all') return answer(404, { message: 'Not Found' });
    if (url.searchParams.get('api-key') !== SIMULATED_API_KEY)
      return answer(401, { message: 'Invalid API key' });
    const species = recognise(body);
    if (species === undefined) return answer(404, { message: 'Species not found' }, true);
    return answer(
      200,
      {
        results: [
          {
            score: species.plantNet,
            species: {
              scientificNameWithoutAuthor: species.scientificName,
              commonNames: [species.commonName],
              family: { scientificNameWithoutAuthor: species.family },
            },
          },
        ],
      },
      true,
    );
  });
}

/** A simulator's answer; `billable` identifications use a unit of the quota. */
interface Answer {
  status: number;
  body: unknown;
  billable: boolean;
}
type Handler = (req: IncomingMessage, body: unknown) => Answer;

const answer = (status: number, body: unknown, billable = false): Answer => ({
  status,
  body,
  billable,
});

async function startProvider(quota: number, handle: Handler): Promise<SimulatedProvider> {
  let mode: ProviderMode = 'healthy';
  let calls = 0;
  let quotaUsed = 0;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      calls += 1;
      if (mode === 'unreachable') {
        res.socket?.destroy();
        return;
      }
      if (mode === 'failing') {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'internal error' }));
        return;
      }
      if (quotaUsed >= quota) {
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '3600' });
        res.end(JSON.stringify({ error: 'quota exhausted' }));
        return;
      }
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'body is not JSON' }));
        return;
      }
      const result = handle(req, body);
      if (result.billable) quotaUsed += 1;
      res.writeHead(result.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(result.body));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get mode() {
      return mode;
    },
    set mode(value: ProviderMode) {
      mode = value;
    },
    get calls() {
      return calls;
    },
    get quotaUsed() {
      return quotaUsed;
    },
    quota,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The species whose keyword the first image contains, if any. */
function recognise(body: unknown): Species | undefined {
  const images = (body as { images?: unknown } | null)?.images;
  const first: unknown = Array.isArray(images) ? images[0] : undefined;
  if (typeof first !== 'string') return undefined;
  const text = Buffer.from(first, 'base64').toString('utf8').toLowerCase();
  return CATALOGUE.find((species) => text.includes(species.keyword));
}
