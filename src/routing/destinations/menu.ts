import type { RoutingConfig } from '../config.js';
import { collectDigits, promptMedia } from '../prompts.js';
import { defineDestination, type Named } from './kind.js';

/**
 * An IVR menu from the config: the prompt (a key stops it), one key → a destination; no key or a
 * key without an option prompts again, up to `retries` times, then the menu's (or the route's)
 * fallback.
 */
export const menu = defineDestination({
  kind: 'menu',
  settings: { at: 'routing.menus' },
  loops: true,
  async reach(dest: Named<'menu'>, run, scope, menus: RoutingConfig['menus']) {
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
      run.mediaMs += performance.now() - t0;
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
