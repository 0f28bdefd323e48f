import { z } from 'zod';
import { timeout } from '../../config/types.js';
import { collectDigits, promptMedia } from '../prompts.js';
import { DIGITS, promptSchema } from '../settings.js';
import { defineDestination, namedEntries, type SchemaKit } from './kind.js';

const menuSchema = (kit: SchemaKit) =>
  z
    .object({
      prompt: promptSchema,
      options: z.record(z.string(), kit.destination).superRefine((o, ctx) => {
        for (const k of Object.keys(o)) if (!DIGITS.test(k)) ctx.addIssue({ code: 'custom', path: [k], message: `"${k}" is not a key: 0-9, * or #` });
      }),
      timeout: timeout.default(5000).describe('how long to wait for a key after the prompt'),
      retries: z.number().int().min(0).max(10).default(2),
      invalidPrompt: promptSchema.optional().describe('played after a key with no option, before the prompt again'),
      fallback: kit.destination.optional().describe('after the retries; default: the route\'s fallback'),
      language: z.string().min(2).optional(),
    })
    .strict();

/**
 * An IVR menu from the config: the prompt (a key stops it), one key → a destination; no key or a
 * key without an option prompts again, up to `retries` times, then the menu's (or the route's)
 * fallback.
 */
export const menu = defineDestination({
  ...namedEntries('menu', 'menus', menuSchema),
  checkSettings(menus, c) {
    for (const [name, m] of Object.entries(menus)) {
      for (const [digit, d] of Object.entries(m.options)) c.destination(d, [name, 'options', digit]);
      c.destination(m.fallback, [name, 'fallback']);
    }
  },
  loops: true,
  async reach(dest, run, scope, menus) {
    const m = menus[dest.name];
    if (!m) return run.fallback(scope, 'unknown-destination');
    const { call, services } = run;
    const language = m.language ?? run.language(scope);
    const prompt = await promptMedia(m.prompt, call, services, { language, voice: scope.route.voice });
    const invalid = m.invalidPrompt ? await promptMedia(m.invalidPrompt, call, services, { language, voice: scope.route.voice }) : undefined;
    run.flush();
    await call.ensureAnswered();
    for (let attempt = 0; attempt <= m.retries; attempt++) {
      if (!call.active) return 'handed-off';
      const t0 = performance.now();
      const got = await collectDigits(call, { prompt, maxDigits: 1, terminator: '', timeoutMs: m.timeout, interDigitTimeoutMs: m.timeout });
      call.waited.mediaMs += performance.now() - t0;
      if (got.ended === 'hangup' || !call.active) return 'handed-off';
      const choice = got.digits !== '' && Object.hasOwn(m.options, got.digits) ? m.options[got.digits] : undefined;
      call.log.info({ step: scope.where, menu: dest.name, key: got.digits || null, matched: choice !== undefined, attempt: attempt + 1 }, 'menu key');
      if (choice) return run.go(choice, scope);
      if (got.digits !== '' && invalid && attempt < m.retries) await run.play(invalid, `menu ${dest.name} invalid key`);
    }
    if (m.fallback) return run.go(m.fallback, scope);
    return run.fallback(scope, 'unknown-destination');
  },
});
