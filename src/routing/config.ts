import { z } from 'zod';
import { duration, regex } from '../config/types.js';
import { sms as smsStep } from '../sms/step.js';
import { scheduleSchema } from './schedule.js';
import { DIGITS, promptSchema, routeSchemaWith, soundName, type Destination, type RouteConfig } from './settings.js';

/**
 * The configuration of dynamic routing (Netsantral's custom integration, R1–R7): the `route`
 * step, the named things an API answer may point at (`routing:`), and how each kind of
 * destination is reached in the dialplan (`destinations:`).
 */

// ---------------------------------------------------------------------------------------------
// Destinations

/** What the seed's `result` may say, and the destination kind each means. */
export const RESULT_KINDS = {
  dynamic: 'dial',
  dial: 'dial',
  announcement: 'announcement',
  menu: 'menu',
  timecondition: 'timecondition',
  sms: 'sms',
  queue: 'queue',
  extensions: 'extension',
  extension: 'extension',
  voicemail: 'voicemail',
  hangup: 'hangup',
  interactivemenu: 'interactivemenu',
} as const satisfies Record<string, DestKind>;

export const DEST_KINDS = [
  'queue', 'extension', 'voicemail', 'dial', 'announcement', 'menu', 'timecondition', 'sms', 'interactivemenu', 'hangup', 'continue',
] as const;
export type DestKind = (typeof DEST_KINDS)[number];

/** Kinds reached by handing the call to the dialplan at a place `destinations:` describes. */
export const DIALPLAN_KINDS = ['queue', 'extension', 'voicemail', 'dial'] as const;
export type DialplanKind = (typeof DIALPLAN_KINDS)[number];
/** Kinds whose name refers to an entry of the `routing:` section. */
export const NAMED_KINDS = { announcement: 'announcements', menu: 'menus', timecondition: 'timeconditions', sms: 'sms', interactivemenu: 'integrations' } as const;

/**
 * A name that ends up inside a dialplan application's arguments (`Queue(${EXTEN:6})`): no comma,
 * bracket, `$`, `&` or `|`, so an API answer can never add options or a second target.
 */
export const DIALPLAN_NAME = /^[A-Za-z0-9_+][A-Za-z0-9_.+-]{0,63}$/;

export interface ContinueTarget {
  context?: string;
  extension?: string;
  priority?: number;
}

const CONFIG_ALIASES: Record<string, DestKind> = { ...RESULT_KINDS, continue: 'continue', integration: 'interactivemenu' };

const continueTarget = z
  .object({
    context: z.string().min(1).optional(),
    extension: z.union([z.string().min(1), z.number()]).transform(String).optional(),
    priority: z.number().int().positive().optional(),
  })
  .strict();

const HANGUP_REASONS = ['normal', 'busy', 'congestion', 'no_answer', 'rejected', 'unallocated', 'failure'] as const;

/**
 * A destination as an admin writes it: a one-key map such as `{ queue: vip }`,
 * `{ extension: 101 }`, `{ announcement: closed }`, `{ hangup: {} }`. Parsed by hand so an error
 * names the kind and what it expected rather than listing every alternative.
 */
export const destinationSchema = z.unknown().transform((item, ctx): Destination => {
  const entries = item && typeof item === 'object' && !Array.isArray(item) ? Object.entries(item) : [];
  const kinds = Object.keys(CONFIG_ALIASES).filter((k) => k !== 'extensions' && k !== 'dynamic');
  if (entries.length !== 1) {
    ctx.addIssue({ code: 'custom', message: `a destination is one of ${kinds.join(', ')} with its name, e.g. { queue: support }` });
    return z.NEVER;
  }
  const [key, value] = entries[0]!;
  // own keys only: `constructor` or `toString` is no kind, however the object literal was built
  const kind = Object.hasOwn(CONFIG_ALIASES, key) ? CONFIG_ALIASES[key] : undefined;
  if (!kind) {
    ctx.addIssue({ code: 'custom', path: [key], message: `unknown destination "${key}" (known: ${kinds.join(', ')})` });
    return z.NEVER;
  }
  const bad = (message: string) => {
    ctx.addIssue({ code: 'custom', path: [key], message });
    return z.NEVER;
  };
  if (kind === 'hangup') {
    if (value === null || value === undefined || (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0)) return { kind };
    const reason = typeof value === 'string' ? value : (value as { reason?: unknown }).reason;
    if (typeof reason === 'string' && (HANGUP_REASONS as readonly string[]).includes(reason)) return { kind, reason } as Destination;
    return bad(`hangup takes {} or a reason (${HANGUP_REASONS.join(', ')})`);
  }
  if (kind === 'continue') {
    const parsed = continueTarget.safeParse(value ?? {});
    if (!parsed.success) return bad('continue takes {} or { context, extension, priority }');
    return { kind, target: parsed.data } as Destination;
  }
  if (kind === 'interactivemenu' && (value === null || (typeof value === 'object' && value !== null && Object.keys(value).length === 0))) return { kind };
  const name = typeof value === 'number' ? String(value) : value;
  if (typeof name !== 'string' || name === '') return bad(`${key} takes a name, e.g. { ${key}: ${kind === 'dial' ? '"+902121234567"' : 'support'} }`);
  if ((DIALPLAN_KINDS as readonly string[]).includes(kind) && !DIALPLAN_NAME.test(name)) {
    return bad(`"${name}" is not a usable ${kind} name (letters, digits, _ . + -; at most 64)`);
  }
  return { kind, name } as Destination;
});

export const routeSchema = routeSchemaWith(destinationSchema);

// ---------------------------------------------------------------------------------------------
// The routing: section — what an answer's redirect may name

const entryName = z.string().min(1).max(64);

const announcementSchema = z
  .object({
    text: z.string().min(1).optional(),
    sound: soundName.optional(),
    language: z.string().min(2).optional(),
    voice: z.string().optional(),
    then: destinationSchema.optional().describe('where the caller goes afterwards; default: the stage\'s next step'),
  })
  .strict()
  .refine((v) => (v.text === undefined) !== (v.sound === undefined), 'give either text (spoken by TTS) or sound (a recorded prompt)');

const menuSchema = z
  .object({
    prompt: promptSchema,
    options: z.record(z.string(), destinationSchema).superRefine((o, ctx) => {
      for (const k of Object.keys(o)) if (!DIGITS.test(k)) ctx.addIssue({ code: 'custom', path: [k], message: `"${k}" is not a key: 0-9, * or #` });
    }),
    timeout: duration.default(5000).describe('how long to wait for a key after the prompt'),
    retries: z.number().int().min(0).max(10).default(2),
    invalidPrompt: promptSchema.optional().describe('played after a key with no option, before the prompt again'),
    fallback: destinationSchema.optional().describe('after the retries; default: the route\'s fallback'),
    language: z.string().min(2).optional(),
  })
  .strict();

const timeconditionSchema = z
  .object({ schedule: z.string().min(1), open: destinationSchema, closed: destinationSchema })
  .strict();

/** An SMS step's settings plus where the call goes after it. */
const smsDestinationSchema = z.unknown().transform((v, ctx) => {
  if (!v || typeof v !== 'object' || Array.isArray(v)) {
    ctx.addIssue({ code: 'custom', message: 'an SMS destination is an sms step\'s settings, e.g. { description: …, provider: …, template: … }' });
    return z.NEVER;
  }
  const { then, ...rest } = v as Record<string, unknown>;
  let next: Destination | undefined;
  if (then !== undefined) {
    const t = destinationSchema.safeParse(then);
    if (!t.success) {
      for (const issue of t.error.issues) ctx.addIssue({ ...issue, path: ['then', ...issue.path] } as Parameters<typeof ctx.addIssue>[0]);
      return z.NEVER;
    }
    next = t.data;
  }
  const s = smsStep.schema.safeParse(rest);
  if (!s.success) {
    for (const issue of s.error.issues) ctx.addIssue(issue as Parameters<typeof ctx.addIssue>[0]);
    return z.NEVER;
  }
  return { step: s.data as unknown, then: next };
});

export const routingSchema = z
  .object({
    maxHops: z.number().int().min(1).max(100).default(10).describe('loop guard: menus and integrations one call may pass through in one route step'),
    announcements: z.record(entryName, announcementSchema).default({}),
    menus: z.record(entryName, menuSchema).default({}),
    schedules: z.record(entryName, scheduleSchema).default({}),
    timeconditions: z.record(entryName, timeconditionSchema).default({}),
    sms: z.record(entryName, smsDestinationSchema).default({}),
    integrations: z.record(entryName, routeSchema).default({}).describe('route settings an interactivemenu answer may name'),
  })
  .strict();
export type RoutingConfig = z.output<typeof routingSchema>;

export const ROUTING_DEFAULTS: RoutingConfig = { maxHops: 10, announcements: {}, menus: {}, schedules: {}, timeconditions: {}, sms: {}, integrations: {} };

// ---------------------------------------------------------------------------------------------
// destinations: — how each dialplan kind is reached

const placeTemplate = z.string().min(1).regex(/^[A-Za-z0-9_{}.+-]+$/, 'letters, digits, _ . + - and {name}');

const dialplanPlace = (exten: string, context = 'call-actions-dest') =>
  z
    .object({
      context: z.string().min(1).regex(/^[A-Za-z0-9_-]+$/).default(context),
      exten: placeTemplate.default(exten).describe('{name} is the queue, extension or mailbox'),
      names: z.array(z.union([z.string(), z.number()]).transform(String)).optional().describe('if given, only these names are accepted from an API answer; another is an unknown destination'),
    })
    .strict();

export const destinationsSchema = z
  .object({
    queue: dialplanPlace('queue-{name}').default({ context: 'call-actions-dest', exten: 'queue-{name}' }),
    extension: dialplanPlace('ext-{name}').default({ context: 'call-actions-dest', exten: 'ext-{name}' }),
    voicemail: dialplanPlace('vm-{name}').default({ context: 'call-actions-dest', exten: 'vm-{name}' }),
    dial: z
      .object({
        dialString: z.string().min(1).describe('e.g. PJSIP/{number}@trunk; set as CA_DIAL for the dialplan'),
        context: z.string().min(1).regex(/^[A-Za-z0-9_-]+$/).default('call-actions-dest'),
        exten: placeTemplate.default('dial'),
        timeout: duration.default(60_000),
        allow: regex.default(/^\+?[0-9]{2,20}$/).describe('numbers an API answer may dial'),
      })
      .strict()
      .optional(),
  })
  .strict();
export type DestinationsConfig = z.output<typeof destinationsSchema>;
export const DESTINATIONS_DEFAULTS: DestinationsConfig = {
  queue: { context: 'call-actions-dest', exten: 'queue-{name}' },
  extension: { context: 'call-actions-dest', exten: 'ext-{name}' },
  voicemail: { context: 'call-actions-dest', exten: 'vm-{name}' },
};

// ---------------------------------------------------------------------------------------------
// Cross-references, checked once the whole file is parsed

type Ctx = z.RefinementCtx;
type Path = Array<string | number>;

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
  const issue = (path: Path, message: string) => ctx.addIssue({ code: 'custom', path, message });
  const dest = (d: Destination | undefined, path: Path) => {
    if (!d) return;
    if (d.kind === 'dial' && !c.destinations.dial) issue(path, 'dial needs destinations.dial with a dialString');
    const name = (d as { name?: string }).name;
    if (d.kind in NAMED_KINDS && name !== undefined) {
      const section = NAMED_KINDS[d.kind as keyof typeof NAMED_KINDS];
      const entries = r[section] as Record<string, unknown>;
      if (!Object.hasOwn(entries, name)) {
        const known = Object.keys(entries);
        issue(path, `no ${d.kind} "${name}" under routing.${section} (${known.length ? `known: ${known.join(', ')}` : 'none defined'})`);
      }
    }
  };
  const schedule = (name: string | undefined, path: Path) => {
    if (name !== undefined && !Object.hasOwn(r.schedules, name)) {
      issue(path, `no schedule "${name}" under routing.schedules (known: ${Object.keys(r.schedules).join(', ') || 'none'})`);
    }
  };
  const route = (cfg: RouteConfig, at: Path) => {
    for (const [code, d] of Object.entries(cfg.results)) dest(d, [...at, 'results', code]);
    dest(cfg.fallback, [...at, 'fallback']);
    schedule(cfg.schedule, [...at, 'schedule']);
  };

  for (const [stage, steps] of Object.entries(c.stages)) {
    steps.forEach((s, i) => {
      if (s.kind === 'route') route(s.config as RouteConfig, ['stages', stage, i, 'route']);
    });
  }
  for (const [name, cfg] of Object.entries(r.integrations)) route(cfg, ['routing', 'integrations', name]);
  for (const [name, a] of Object.entries(r.announcements)) dest(a.then, ['routing', 'announcements', name, 'then']);
  for (const [name, m] of Object.entries(r.menus)) {
    for (const [digit, d] of Object.entries(m.options)) dest(d, ['routing', 'menus', name, 'options', digit]);
    dest(m.fallback, ['routing', 'menus', name, 'fallback']);
  }
  for (const [name, t] of Object.entries(r.timeconditions)) {
    schedule(t.schedule, ['routing', 'timeconditions', name, 'schedule']);
    dest(t.open, ['routing', 'timeconditions', name, 'open']);
    dest(t.closed, ['routing', 'timeconditions', name, 'closed']);
  }
  for (const [name, s] of Object.entries(r.sms)) {
    const step = s.step as { provider: string; template?: string };
    const at = ['routing', 'sms', name];
    if (!Object.hasOwn(c.sms.providers, step.provider)) {
      issue([...at, 'provider'], `unknown provider "${step.provider}" (known: ${Object.keys(c.sms.providers).join(', ') || 'none'})`);
    }
    if (step.template !== undefined && !Object.hasOwn(c.sms.templates, step.template)) {
      issue([...at, 'template'], `unknown template "${step.template}" (known: ${Object.keys(c.sms.templates).join(', ') || 'none'})`);
    }
    dest(s.then, [...at, 'then']);
  }
}
