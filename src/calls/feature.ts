import type { CountryCode } from 'libphonenumber-js';
import type { z } from 'zod';
import type { AmiPort } from '../asterisk/ami.js';
import type { CallEventTracker } from '../asterisk/call-events.js';
import type { CliContext } from '../history/command.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { RetentionRule } from '../store/retention.js';
import type { Store } from '../store/port.js';
import type { StepServices } from './services.js';
import type { StepDefinition, StepSpec } from './step.js';

/**
 * One feature (sms, hooks, routing, crm.salesforce) as the service assembles it: its config
 * sections and their cross-checks, its steps, its CLI commands, and what it adds to the running
 * service (step services, HTTP routes, health). A new feature is one folder whose index.ts
 * exports one of these, and one line in app/features.ts. `C` is the config as the feature reads
 * it: its own sections plus the kernel's it needs (app/ passes the whole validated file).
 */
export interface Feature<C = never, S extends z.ZodRawShape = z.ZodRawShape> {
  /** its key in /health, and its logger's component */
  readonly name: string;
  /** top-level config sections it owns, merged into the root schema by app/ */
  readonly sections: S;
  readonly steps?: readonly StepDefinition[];
  /** Cross-references no single section can check (a step naming a provider, a hook, a menu). */
  check?(config: C & { stages: Record<string, StepSpec[]> }, ctx: z.RefinementCtx): void;
  /** Whether it needs the call-event tracker (AMI events followed for every call). */
  followsCalls?(config: C): boolean;
  /** `call-actions <command> …` */
  readonly commands?: readonly FeatureCommand<C>[];
  /** Builds its parts; the service starts them once every feature is built. */
  create(ctx: FeatureContext<C>): FeatureRuntime<C> | Promise<FeatureRuntime<C>>;
}

export interface FeatureCommand<C> {
  name: string;
  /** usage lines, indented by two spaces, ending in a newline */
  usage: string;
  run(args: string[], ctx: CliContext<C>): number | Promise<number>;
}

export interface FeatureContext<C> {
  config: C;
  store: Store;
  log: Logger;
  /** Values read from the environment for secret-looking fields. */
  secrets: readonly string[];
  /** How caller IDs without a + are read (sms.defaultCountry). */
  defaultCountry?: CountryCode;
  ami?: AmiPort;
  /** Call events (start, answer, queue, end) per call; fed by AMI only when a feature follows calls. */
  tracker: CallEventTracker;
  /** What /metrics reports; a feature counts its own events there. */
  metrics: Metrics;
  /** How the outside reaches the public (media) listener, e.g. for providers' receipt URLs. */
  publicUrl?: string;
}

/** `contentType` set: `body` is sent as it is (a string), not as JSON. */
export type RouteAnswer = { status: number; body: unknown; contentType?: string };
/** GET handler of one admin endpoint; a RangeError is a bad query parameter, answered 400. */
export type Route = (url: URL) => RouteAnswer | Promise<RouteAnswer>;

/** A request from an outside service (a provider's callback), body and all. */
export interface ProviderRequest {
  method: string;
  url: URL;
  /** lower-case names */
  headers: Readonly<Record<string, string>>;
  body: string;
}
/**
 * Handler of one provider-facing endpoint. PUBLIC, not admin: a provider's servers call it, so it
 * must sit where they can reach it, and it authenticates each request itself (a signature or a
 * shared secret) rather than by the admin token.
 */
export type ProviderRoute = (req: ProviderRequest) => RouteAnswer | Promise<RouteAnswer>;

/** What a POST to an admin action carries: its JSON body and who sent it (the token's name). */
export interface ActionRequest {
  body: Record<string, unknown>;
  actor: string;
}
/**
 * POST handler of one admin action (re-send, a memo after the call): admin tokens only, and every call is written to the
 * audit log with `body.id` as its target. A RangeError is a bad body, answered 400.
 */
export type Action = (req: ActionRequest) => RouteAnswer | Promise<RouteAnswer>;

export interface FeatureRuntime<C = never> {
  /** what its steps (and other features' steps) may use; merged into the one StepServices */
  services?: Partial<StepServices>;
  routes?: Record<string, Route>;
  /** admin actions, e.g. `/sms/resend` */
  actions?: Record<string, Action>;
  /** how its logs' old rows are purged (retention.<log>) */
  retention?: RetentionRule[];
  /** PUBLIC provider-facing endpoints (any method), e.g. SMS delivery receipts; see ProviderRoute. */
  providerRoutes?: Record<string, ProviderRoute>;
  /** Merge fields it holds for a call (e.g. what a hook extracted), added to every stage the call enters. */
  mergeFields?(callId: string): Promise<Record<string, string>>;
  /** under its name in /health; `warnings` are also listed at the top level */
  health?(): { warnings?: string[] } & object;
  start?(): void;
  /** Another instance on this store has gone: read the store again, its queued rows may be ours to deliver now. */
  wake?(): void;
  /**
   * A reloaded config, already validated: the services calls arriving from now on get (a call in
   * progress keeps the ones it started with), and the sections this feature can only apply at a
   * restart, where they changed. Without it, any change to the feature's sections needs a restart.
   */
  reload?(config: C): { services?: Partial<StepServices>; restart?: string[] };
  /** after the stage runner has let every call go */
  stop?(): Promise<void> | void;
}

/**
 * Checks a feature's shape where it is written: `defineFeature<ConfigAsItReadsIt>()({ … })`.
 * Curried so that `C` is given and the sections' own type is inferred (the root schema keeps it).
 */
export function defineFeature<C>() {
  return <S extends z.ZodRawShape>(feature: Feature<C, S>): Feature<C, S> => feature;
}

/** An action body's `id`: a non-empty string of at most 200 characters, or a RangeError (400). */
export function requireId(body: Record<string, unknown>): string {
  const id = body.id;
  if (typeof id !== 'string' || id === '' || id.length > 200) throw new RangeError('id: expected the id of the row, as a string');
  return id;
}
