import { z } from 'zod';
import { DESTINATION_KEYS, checkDestination, checkKindSettings, readDestination, settingsSchemas, type DESTINATION_KINDS } from './destinations/index.js';
import { entries, type SchemaKit } from './destinations/kind.js';
import { scheduleSchema } from './schedule.js';
import { routeSchemaWith, type Destination, type RouteConfig } from './settings.js';

/**
 * The configuration of dynamic routing (Netsantral's custom integration, R1–R7): the `route`
 * step, the named things an API answer may point at (`routing:`), and how each kind of
 * destination is reached in the dialplan (`destinations:`). The destination kinds' table
 * (destinations/index.ts) supplies how each kind is written, its sections and its checks; this
 * file puts them together.
 */

/**
 * A destination as an admin writes it: a one-key map such as `{ queue: vip }`,
 * `{ extension: 101 }`, `{ announcement: closed }`, `{ hangup: {} }`. Parsed by hand so an error
 * names the kind and what it expected rather than listing every alternative.
 */
export const destinationSchema = z.unknown().transform((item, ctx): Destination => {
  const entries = item && typeof item === 'object' && !Array.isArray(item) ? Object.entries(item) : [];
  if (entries.length !== 1) {
    ctx.addIssue({ code: 'custom', message: `a destination is one of ${DESTINATION_KEYS.join(', ')} with its name, e.g. { queue: support }` });
    return z.NEVER;
  }
  const [key, value] = entries[0]!;
  const dest = readDestination(key, value);
  if (dest === undefined || typeof dest === 'string') {
    ctx.addIssue({ code: 'custom', path: [key], message: dest ?? `unknown destination "${key}" (known: ${DESTINATION_KEYS.join(', ')})` });
    return z.NEVER;
  }
  return dest;
});

export const routeSchema = routeSchemaWith(destinationSchema);

const kit: SchemaKit = { destination: destinationSchema, route: routeSchema };

// ---------------------------------------------------------------------------------------------
// The kinds' sections: routing.<section> and destinations.<kind>

type Kind = (typeof DESTINATION_KINDS)[number];
type Section = 'routing' | 'destinations';
type KeyIn<K, S extends Section> = K extends { settings?: { at: `${S}.${infer Key}` } } ? Key : never;
type SettingsOf<K> = K extends { settings?: { schema(kit: SchemaKit): z.ZodType<infer T> } } ? T : never;
/** A section that may be left out (destinations.dial) is an optional key, as the file has it. */
type SchemaFor<T> = undefined extends T ? z.ZodOptional<z.ZodType<Exclude<T, undefined>>> : z.ZodType<T>;
/** What the kinds keep under one section, keyed as the file writes it. */
type KindSections<S extends Section> = { [K in Kind as KeyIn<K, S>]: SchemaFor<SettingsOf<K>> };

// the table builds them at run time; the types above say what they are
const kindSections = <S extends Section>(section: S) => settingsSchemas(section, kit) as KindSections<S>;

export const routingSchema = z
  .object({
    maxHops: z.number().int().min(1).max(100).default(10).describe('loop guard: menus and integrations one call may pass through in one route step'),
    schedules: entries(scheduleSchema),
    ...kindSections('routing'),
  })
  .strict();
export type RoutingConfig = z.output<typeof routingSchema>;
export const ROUTING_DEFAULTS: RoutingConfig = routingSchema.parse({});

export const destinationsSchema = z.object(kindSections('destinations')).strict();
export type DestinationsConfig = z.output<typeof destinationsSchema>;
export const DESTINATIONS_DEFAULTS: DestinationsConfig = destinationsSchema.parse({});

/** The config sections dynamic routing owns (app/ merges them into the root schema). */
export const ROUTING_SECTIONS = {
  routing: routingSchema.default(ROUTING_DEFAULTS).describe('what a routing API answer may name: announcements, menus, schedules… (docs/routing.md)'),
  destinations: destinationsSchema.default(DESTINATIONS_DEFAULTS).describe('how queue, extension, voicemail and dial destinations are reached in the dialplan'),
};

// ---------------------------------------------------------------------------------------------
// Cross-references, checked once the whole file is parsed

type Ctx = z.RefinementCtx;
type Path = ReadonlyArray<string | number>;

/**
 * Every destination the config names must exist (an API answer naming a missing one is routed
 * to the fallback at run time, but a typo in the file is an error at start-up), every schedule a
 * route or time condition uses, and every SMS provider and template.
 */
export function checkRouting(
  c: {
    stages: Record<string, Array<{ kind: string; config: unknown }>>;
    routing: RoutingConfig;
    destinations: DestinationsConfig;
    sms: { providers: Record<string, unknown>; templates: Record<string, string> };
  },
  ctx: Ctx,
): void {
  const r = c.routing;
  const issue = (path: Path, message: string) => ctx.addIssue({ code: 'custom', path: [...path], message });
  const destination = (d: Destination | undefined, path: Path) => {
    const why = d && checkDestination(d, c);
    if (why) issue(path, why);
  };
  const schedule = (name: string | undefined, path: Path) => {
    if (name !== undefined && !Object.hasOwn(r.schedules, name)) {
      issue(path, `no schedule "${name}" under routing.schedules (known: ${Object.keys(r.schedules).join(', ') || 'none'})`);
    }
  };
  const route = (cfg: RouteConfig, at: Path) => {
    for (const [code, d] of Object.entries(cfg.results)) destination(d, [...at, 'results', code]);
    destination(cfg.fallback, [...at, 'fallback']);
    schedule(cfg.schedule, [...at, 'schedule']);
  };

  for (const [stage, steps] of Object.entries(c.stages)) {
    steps.forEach((s, i) => {
      if (s.kind === 'route') route(s.config as RouteConfig, ['stages', stage, i, 'route']);
    });
  }
  checkKindSettings(c, { destination, schedule, route, issue, sms: c.sms });
}
