import { durationUpTo } from '../config/types.js';
import { z } from 'zod';
import type { CountryCode } from 'libphonenumber-js';
import type { StepSpec } from '../calls/step.js';
import { byteSize, countryCode, httpUrl, timeout } from '../config/types.js';
import { retentionSchema } from '../store/retention.js';
import { pairSchema } from './pair.js';
import { consoleSchema, httpSchema } from './http-config.js';
import { fieldPath } from '../config/load.js';
import { FEATURES, FEATURE_SECTIONS } from './features.js';
import { stepItem, stepItemForSchema } from './steps.js';

export { smsProviderSchema, type SmsProviderConfig } from '../sms/config.js';

/**
 * The one file an admin writes. Defaults make a minimal file work against a local Asterisk;
 * every section is strict, so a misspelt key is an error at start-up, not a silent no-op.
 */
const ari = z
  .object({
    url: httpUrl.default('http://127.0.0.1:8088'),
    user: z.string().min(1),
    password: z.string().min(1),
    app: z.string().regex(/^[A-Za-z0-9_-]+$/).default('call-actions'),
    timeout: timeout.default(5000),
    /** a 401/403 from Asterisk ends the service (exit 2) instead of retrying with backoff */
    exitOnAuthError: z.boolean().default(false),
  })
  .strict();

const ami = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(1).max(65535).default(5038),
    user: z.string().min(1),
    secret: z.string().min(1),
    timeout: timeout.default(5000),
  })
  .strict();

const tts = z
  .object({
    engine: z.enum(['espeak-ng', 'open-jtalk']).default('espeak-ng'),
    engines: z
      .record(z.string().regex(/^[a-z]{2,3}$/, 'a language code such as ja'), z.enum(['espeak-ng', 'open-jtalk']))
      .default({ ja: 'open-jtalk' })
      .describe('engine per language, over `engine` (espeak-ng speaks Japanese only in kana)'),
    language: z.string().min(2).default('en'),
    voice: z.string().optional(),
    cacheDir: z.string().min(1).default('./data/tts'),
    maxChars: z.number().int().positive().max(5000).default(1000),
    timeout: timeout.default(5000),
    cacheSize: byteSize.default(512 * 1024 * 1024).describe('the cache folder is kept under this size (e.g. 500MB), least recently used files going first'),
  })
  .strict();

const shutdown = z
  .object({
    // at most 10m (timeout's bound): an orchestrator kills a process that takes longer to stop
    drain: timeout.default(30_000).describe('on SIGTERM, how long calls in progress may finish their stage before they are handed back to the dialplan'),
  })
  .strict();

const stageName = z.string().regex(/^[A-Za-z0-9_-]+$/, 'a stage name is letters, digits, - and _');

const storeUrlSchema = z.string().regex(/^(sqlite:|postgres(ql)?:\/\/)/, 'sqlite:PATH or postgres://user@host:port/db');

function configSchema(stepSchema: z.ZodType) {
  return z
    .object({
      asterisk: z.object({ ari, ami: ami.optional() }).strict(),
      store: z
        .union([
          storeUrlSchema,
          z.strictObject({
            url: storeUrlSchema,
            pool: z.number().int().min(1).max(200).optional().describe('PostgreSQL: connections in the pool (default 10)'),
            statementTimeout: durationUpTo(3_600_000).optional().describe('PostgreSQL: statement_timeout, e.g. 30s (default 30s; 0 = none)'),
          }),
        ])
        .default('sqlite:./data/call-actions.db')
        .describe('sqlite:PATH (one instance) or postgres://user@host:port/db (instances sharing one database)'),
      http: httpSchema.prefault({}),
      console: consoleSchema,
      retention: retentionSchema,
      log: z.object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info') }).strict().default({ level: 'info' }),
      shutdown: shutdown.default({ drain: 30_000 }),
      pair: pairSchema.prefault({}),
      tts: tts.prefault({}),
      stages: z.record(stageName, z.array(stepSchema).min(1)).default({}),
      ...FEATURE_SECTIONS,
    })
    .strict();
}

/** Cross-references no single section can check, each feature checking its own. */
const checked = configSchema(stepItem).superRefine((c, ctx) => {
  for (const [stage, steps] of Object.entries(c.stages)) {
    (steps as StepSpec[]).forEach((spec, i) => (spec.where = fieldPath(['stages', stage, i, spec.kind])));
  }
  for (const f of FEATURES) f.check?.(c as never, ctx);
});

export const rootSchema = checked;
export type Config = z.output<typeof rootSchema>;
export type { CountryCode };

/** JSON Schema of what an admin writes (input side: "5s" strings, not milliseconds). */
export function jsonSchema(): object {
  return z.toJSONSchema(configSchema(stepItemForSchema), { io: 'input', unrepresentable: 'any' });
}
