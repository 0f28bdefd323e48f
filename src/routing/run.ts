import type { ContinueTarget } from '../asterisk/ari.js';
import type { CallSession } from '../calls/session.js';
import type { StepServices } from '../calls/services.js';
import type { StepResult } from '../calls/step.js';
import type { Outcome } from './history.js';
import type { Schedule } from './schedule.js';
import type { Destination, RouteConfig } from './settings.js';

/** The route whose fallback and language apply to what happens now. */
export interface Scope {
  route: RouteConfig;
  /** config path of the route, for logs */
  where: string;
  /** the integration's name under routing.integrations, if it is one */
  integration?: string;
}

/**
 * One routed call as a destination sees it: what a destination may ask of the route step that
 * brought the caller there. router.ts implements it; destinations know only this, so the router
 * and the destinations do not import each other.
 */
export interface Run {
  readonly call: CallSession;
  readonly services: StepServices;
  /** routing.schedules, for a destination that depends on the time of day */
  readonly schedules: Readonly<Record<string, Schedule>>;
  language(scope: Scope): string;
  /** Plays to the end (or until the caller leaves), counted as the caller's time. */
  play(media: string, what: string): Promise<string>;
  /** Takes the caller on to another destination; the loop guard counts menus and integrations. */
  go(dest: Destination, scope: Scope): Promise<StepResult>;
  /** The route's fallback: where a destination sends the caller when it cannot take them. */
  fallback(scope: Scope, why: Outcome): Promise<StepResult>;
  /** Asks an integration's API (again), digits first when `gatherFirst`. */
  integration(scope: Scope, opts?: { gatherFirst?: boolean }): Promise<StepResult>;
  /** Logged once the caller has left for `destination`. */
  left(scope: Scope, destination: string, why?: string): void;
  /** Writes the routing log's pending rows: before the caller waits on a prompt, not while they are handed over. */
  flush(): void;
  /** "queue:vip": how the routing log names a destination, whatever its kind. */
  describe(dest: Destination): string;
  /** The dialplan place a destination of any kind is, when it is just one (a queue, a continue with a place). */
  placeOf(dest: Destination): ContinueTarget | undefined;
}
