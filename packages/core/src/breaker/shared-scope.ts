import type { BreakerLink, ProbeClaim, SharedCommand } from './breaker-store';
import { FAILED, SUCCESS, type Outcome, type ProbeSource, type Ticket } from './state-machine';

/**
 * The only code that speaks to a shared store's {@link BreakerLink}, created for breakers in
 * shared scope only (a local breaker holds `undefined` and pays nothing). It is consulted in five
 * places: closed outcomes, trips, half-open admission, probe settlement and operator commands.
 */
export class SharedScope implements ProbeSource {
  constructor(private readonly link: BreakerLink) {}

  /** Whether the store answers now; while it does not, the breaker decides alone. */
  get available(): boolean {
    return this.link.available;
  }

  get held(): number {
    return this.link.claiming;
  }

  takeParked(ticket: Ticket): boolean {
    return this.link.takeParked(ticket);
  }

  mayClaim(): boolean {
    return this.link.mayClaim();
  }

  /** 1. A closed call's outcome counts towards the cluster's totals. */
  record(failed: boolean, slow: boolean): void {
    this.link.record(failed, slow);
  }

  /**
   * 2. The local counts could open the circuit. With the store reachable the circuit opens on
   * the cluster's totals instead: the pending counts are hurried to the store. Returns whether
   * the trip was left to the store.
   */
  deferTrip(): boolean {
    if (!this.link.available) return false;
    this.link.flushSoon();
    return true;
  }

  /** 3. Half-open admission: claims a shared probe permit for `ticket`. */
  claim(ticket: Ticket): Promise<ProbeClaim> {
    return this.link.claimProbe(ticket);
  }

  /** 3. A synchronous `tryAcquire()` was refused: claim a permit for a later call. */
  claimAhead(): void {
    this.link.claimAhead();
  }

  /** Gives back a granted permit the breaker could not use. */
  giveBack(ticket: Ticket): void {
    this.link.settleProbe(ticket, 'ignore');
  }

  /**
   * 4. Settles a probe. Returns true when the shared circuit decides (a shared permit, or a local
   * one settled once the store is back: the shared state rules then); false leaves it to the
   * breaker.
   */
  settleProbe(ticket: Ticket, outcome: Outcome): boolean {
    const name = outcome === SUCCESS ? 'success' : outcome === FAILED ? 'failure' : 'ignore';
    return this.link.settleProbe(ticket, name) || this.link.available;
  }

  /** 5. An operator action applies to every process. */
  command(state: SharedCommand, openForMs: number, reason: string): void {
    this.link.command(state, openForMs, reason);
  }
}
