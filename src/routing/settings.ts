import { z } from 'zod';
import { timeout } from '../config/types.js';
import { encodingSchema, headersSchema, urlTemplate } from '../http/request.js';

/**
 * The settings that the route and gather steps and the destination kinds build on: what a
 * destination is, prompts and keys, and the route step's own settings. They stand below
 * config.ts, which puts the whole routing config together from the kinds' table, so that a
 * kind's module can use them without importing every other kind.
 */

/**
 * Where a route sends the caller: a kind, and what that kind needs (a name, a reason, a place).
 * Each kind's module under destinations/ says the rest.
 */
export interface Destination {
  readonly kind: string;
}

// ---------------------------------------------------------------------------------------------
// Prompts and digit collection

export const soundName = z
  .string()
  .regex(/^[A-Za-z0-9_\-/.:]+$/, 'a sound name like "hello-world" or "custom/welcome"')
  .refine((s) => !s.includes('..'), 'a sound name may not contain ".."');

/** Text spoken by TTS (a string, or `{ text, language, voice }`) or a recorded `{ sound }`. */
export const promptSchema = z.union([
  z.string().min(1).transform((text) => ({ text }) as Prompt),
  z
    .object({ text: z.string().min(1).optional(), sound: soundName.optional(), language: z.string().min(2).optional(), voice: z.string().optional() })
    .strict()
    .refine((v) => (v.text === undefined) !== (v.sound === undefined), 'give either text (spoken by TTS) or sound (a recorded prompt)'),
]);
export interface Prompt {
  text?: string;
  sound?: string;
  language?: string;
  voice?: string;
}

export const DIGITS = /^[0-9*#]$/;

export const gatherSchema = z
  .object({
    prompt: promptSchema.optional().describe('played while the caller may already type (a key stops it)'),
    maxDigits: z.number().int().min(1).max(32).default(20),
    minDigits: z.number().int().min(1).max(32).default(1),
    terminator: z.union([z.string().regex(DIGITS), z.literal('')]).default('#').describe('the key that ends the input early; "" for none'),
    timeout: timeout.default(5000).describe('how long to wait for the first key after the prompt'),
    interDigitTimeout: timeout.default(3000).describe('how long to wait for each further key'),
    retries: z.number().int().min(0).max(10).default(1).describe('prompts again this many times when nothing (or too little) was typed'),
    invalidPrompt: promptSchema.optional().describe('played before a retry'),
    var: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).default('digits').describe('the merge field the digits go to'),
    language: z.string().min(2).optional(),
  })
  .strict()
  .refine((v) => v.minDigits <= v.maxDigits, 'minDigits is larger than maxDigits');
export type GatherConfig = z.output<typeof gatherSchema>;

// ---------------------------------------------------------------------------------------------
// The route step

/** The request's field names; the defaults are the seed's. `null` leaves a field out. */
const wireName = z.union([z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, 'a field name of letters, digits, _ . -'), z.null()]);
export const DEFAULT_FIELDS = { caller: 'arayan_no', called: 'aranan_no', pbx: 'santral_no', callId: 'arama_id', digits: 'tus_bilgisi' } as const;
export type FieldKey = keyof typeof DEFAULT_FIELDS;

const fieldsSchema = z
  .object({
    caller: wireName.optional(),
    called: wireName.optional(),
    pbx: wireName.optional(),
    callId: wireName.optional(),
    digits: wireName.optional(),
  })
  .strict()
  .transform((v) => {
    const out: Partial<Record<FieldKey, string>> = {};
    for (const k of Object.keys(DEFAULT_FIELDS) as FieldKey[]) {
      const name = v[k] === undefined ? DEFAULT_FIELDS[k] : v[k];
      if (name !== null) out[k] = name;
    }
    return out;
  });

const templateValue = z.union([z.string(), z.number(), z.boolean()]).transform(String);

/**
 * The route step's settings (also an integration's, under routing.integrations). Where they name
 * a destination (results, fallback) they take the schema that knows every kind, which is put
 * together from the kinds' table in config.ts: a kind's own settings may hold a route, so the
 * kinds cannot be imported from here.
 */
export function routeSchemaWith(destination: z.ZodType<Destination>) {
  return z
    .object({
      url: urlTemplate,
      encoding: encodingSchema.default('json').describe('form (HTTP POST), query (HTTP GET), json (JSON POST), xml (XML POST)'),
      method: z.enum(['GET', 'POST', 'PUT']).optional().describe('default: GET for query, POST otherwise'),
      headers: headersSchema.optional(),
      fields: fieldsSchema.default(DEFAULT_FIELDS).describe('the request field names; null leaves a field out'),
      numbers: z
        .enum(['dialled', 'e164', 'national'])
        .default('dialled')
        .describe('how the caller, called and pbx fields are sent: as dialled (what Asterisk has, e.g. 0455556666), e164 (+81455556666) or national (0455556666); a value that is no phone number goes as dialled'),
      extra: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/), templateValue).default({}).describe('fixed custom fields (merge fields allowed)'),
      xmlRoot: z.string().regex(/^[A-Za-z_][A-Za-z0-9._-]*$/).default('request').describe('root element of an XML request'),
      timeout: timeout.default(5000),
      answer: z
        .object({
          format: z.enum(['auto', 'json', 'xml']).default('auto'),
          callerName: z.union([z.string().min(1), z.literal(false)]).default('name').describe('answer field whose value becomes the caller-ID name agents see (R6); false: none'),
        })
        .strict()
        .default({ format: 'auto', callerName: 'name' }),
      language: z.string().min(2).optional().describe('TTS language of the spoken data (default: tts.language)'),
      voice: z.string().optional(),
      speak: z.boolean().default(true).describe('speak the answer\'s data before routing'),
      results: z.record(z.string().min(1), destination).default({}).describe('a result that is one of these codes goes to that destination'),
      fallback: destination.optional().describe('where the caller goes when the API fails or answers nonsense; default: back to the dialplan with CALL_ACTIONS_RESULT=error'),
      filler: z
        .object({ after: timeout.default(1500), prompt: promptSchema })
        .strict()
        .optional()
        .describe('played (repeatedly) while the API is slower than `after`'),
      schedule: z.string().min(1).optional().describe('ask the API only inside this schedule (routing.schedules); otherwise the fallback'),
      gather: gatherSchema.optional().describe('digits the caller types before the request (sent as the digits field)'),
    })
    .strict()
    .superRefine((v, ctx) => {
      const taken = new Set(Object.values(v.fields));
      for (const k of Object.keys(v.extra)) {
        if (taken.has(k)) ctx.addIssue({ code: 'custom', path: ['extra', k], message: `"${k}" is already the name of a call field (fields:)` });
      }
    });
}
export type RouteConfig = z.output<ReturnType<typeof routeSchemaWith>>;
