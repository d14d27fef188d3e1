import { monitorEventLoopDelay, performance, type EventLoopUtilization } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';

/** One reading of the process's load, taken by a {@link PressureMonitor}. */
export interface PressureReading {
  /** Mean event-loop delay over the last interval, in milliseconds. */
  eventLoopDelayMs: number;
  /** Share of the last interval the event loop was busy, from 0 to 1. */
  eventLoopUtilization: number;
  /** Bytes of V8 heap in use. */
  heapUsedBytes: number;
  /** Heap in use as a share of the heap size limit, from 0 to 1. */
  heapUsedRatio: number;
}

/**
 * Where load shedders read the process's load. The default, {@link processPressure}, is one
 * sampler per process; pass another to a load shedder in tests.
 */
export interface PressureMonitor {
  /** The latest reading (all zero before the first sample). */
  readonly current: PressureReading;
  /**
   * Asks for readings at least every `intervalMs`; `onSample` runs after each one. Returns the
   * function that cancels the subscription.
   */
  subscribe(intervalMs: number, onSample: (reading: PressureReading) => void): () => void;
}

/** Resolution of the event-loop delay histogram, in milliseconds. */
const RESOLUTION_MS = 10;

interface Subscriber {
  intervalMs: number;
  onSample: (reading: PressureReading) => void;
}

/**
 * The process's one sampler: an event-loop delay histogram and one unref'd interval, running
 * only while someone subscribes, at the shortest interval asked for.
 */
class ProcessPressure implements PressureMonitor {
  current: PressureReading = {
    eventLoopDelayMs: 0,
    eventLoopUtilization: 0,
    heapUsedBytes: 0,
    heapUsedRatio: 0,
  };
  private readonly subscribers = new Set<Subscriber>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private intervalMs = 0;
  private histogram: ReturnType<typeof monitorEventLoopDelay> | undefined;
  private elu: EventLoopUtilization | undefined;

  subscribe(intervalMs: number, onSample: (reading: PressureReading) => void): () => void {
    const subscriber: Subscriber = { intervalMs, onSample };
    this.subscribers.add(subscriber);
    this.reschedule();
    return () => {
      if (this.subscribers.delete(subscriber)) this.reschedule();
    };
  }

  private reschedule(): void {
    let shortest = Infinity;
    for (const subscriber of this.subscribers) shortest = Math.min(shortest, subscriber.intervalMs);
    if (shortest === this.intervalMs) return;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.intervalMs = shortest;
    if (shortest === Infinity) {
      this.histogram?.disable();
      this.histogram = undefined;
      this.elu = undefined;
      return;
    }
    if (this.histogram === undefined) {
      this.histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
      this.histogram.enable();
      this.elu = performance.eventLoopUtilization();
    }
    this.timer = setInterval(() => this.sample(), shortest);
    this.timer.unref();
  }

  private sample(): void {
    const histogram = this.histogram;
    if (histogram === undefined) return;
    const mean = histogram.mean / 1e6 - RESOLUTION_MS;
    histogram.reset();
    const elu = performance.eventLoopUtilization();
    const utilization = performance.eventLoopUtilization(elu, this.elu).utilization;
    this.elu = elu;
    const heap = getHeapStatistics();
    this.current = {
      eventLoopDelayMs: Number.isFinite(mean) && mean > 0 ? mean : 0,
      eventLoopUtilization: Number.isFinite(utilization) ? utilization : 0,
      heapUsedBytes: heap.used_heap_size,
      heapUsedRatio: heap.used_heap_size / heap.heap_size_limit,
    };
    for (const subscriber of this.subscribers) subscriber.onSample(this.current);
  }
}

/** The process's one load sampler (event-loop delay and utilisation, heap), shared by every load shedder. */
export const processPressure: PressureMonitor = new ProcessPressure();
