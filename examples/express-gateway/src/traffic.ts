/**
 * A small client loop on loopback: three API clients of the gateway.
 *
 * - `garden-app` (the shop's mobile app): one request per tick, in turn plant-id, weather,
 *   inventory;
 * - `nursery-pos` (the till): an inventory lookup every other tick;
 * - `scraper`: a burst of plant identifications every 20 ticks, larger than the per-client
 *   burst allowance, so part of it is refused with 429.
 */
import { CITIES, KNOWN_IMAGES, KNOWN_SKUS, type Random } from './upstreams';

/** Options of {@link TrafficLoop}. */
export interface TrafficOptions {
  /** The gateway's base URL. */
  baseUrl: string;
  /** Time between ticks. */
  tickMs: number;
  /** How many ticks to run (`Infinity` until `stop()`). */
  ticks: number;
  /** Requests in one burst of the scraper. */
  scraperBurst: number;
  random: Random;
  /** Most requests in flight; a tick that finds them all busy sends nothing. @defaultValue 100 */
  maxInFlight?: number;
}

const pick = <T>(random: Random, items: readonly T[]): T =>
  items[Math.floor(random() * items.length)]!;

/** Sends the planned requests on time and counts them. */
export class TrafficLoop {
  /** Requests sent so far. */
  sent = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private stopped = false;
  private wake: (() => void) | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly options: TrafficOptions) {}

  /** Starts the loop; the promise settles when the last tick ran and every answer is in. */
  run(): Promise<void> {
    this.running ??= this.loop();
    return this.running;
  }

  /** Stops after the current tick and waits for the answers in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
  }

  private async loop(): Promise<void> {
    const { tickMs, ticks } = this.options;
    const start = performance.now();
    for (let tick = 0; tick < ticks && !this.stopped; tick++) {
      const wait = start + tick * tickMs - performance.now();
      if (wait > 0) await this.sleep(wait);
      if (this.stopped) break;
      this.tick(tick);
    }
    await Promise.all(this.inFlight);
  }

  private tick(tick: number): void {
    const { random, scraperBurst } = this.options;
    const services = ['plant-id', 'weather', 'inventory'] as const;
    const service = services[tick % 3]!;
    this.send('garden-app', pathFor(service, random));
    if (tick % 2 === 0) this.send('nursery-pos', pathFor('inventory', random));
    if (tick % 20 === 10) {
      for (let i = 0; i < scraperBurst; i++) this.send('scraper', pathFor('plant-id', random));
    }
  }

  private send(client: string, path: string): void {
    if (this.inFlight.size >= (this.options.maxInFlight ?? 100)) return;
    this.sent++;
    const request = fetch(this.options.baseUrl + path, {
      headers: { 'x-api-key': client, 'x-request-id': `${client}-${this.sent}` },
    })
      .then((response) => response.arrayBuffer())
      .then(
        () => undefined,
        () => undefined, // A refused connection at shutdown is not the demo's story.
      )
      .finally(() => this.inFlight.delete(request));
    this.inFlight.add(request);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

function pathFor(service: 'plant-id' | 'weather' | 'inventory', random: Random): string {
  switch (service) {
    case 'plant-id':
      return `/api/plants/identify?image=${pick(random, KNOWN_IMAGES)}`;
    case 'weather':
      return `/api/weather/${pick(random, CITIES)}`;
    case 'inventory':
      return `/api/inventory/${pick(random, KNOWN_SKUS)}`;
  }
}
