import type { Dispatcher } from 'undici';
import type { DestinationsConfig, RoutingConfig } from './config.js';
import type { NewRouteLogEntry } from './history.js';

/** What the route and gather steps (and the destinations they reach) use, beside speech and SMS. */
export interface RoutingServices {
  readonly routing: RoutingConfig;
  readonly destinations: DestinationsConfig;
  /** tts.language: what route steps speak in when they name no language. */
  readonly defaultLanguage: string;
  /** Values (from the environment) that must not reach the routing log. */
  readonly secrets: readonly string[];
  /** Where entries go: the app's group commit (which never throws into a call), or a RouteLog. */
  readonly log: { record(entry: NewRouteLogEntry): string | Promise<string> };
  /** Connection pool for the customer's API; defaults to the shared one. */
  readonly dispatcher?: Dispatcher;
}

declare module '../calls/services.js' {
  interface StepServices {
    /** Dynamic routing; absent where the service runs without it. */
    routing?: RoutingServices;
  }
}
