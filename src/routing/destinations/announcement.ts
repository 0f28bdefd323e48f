import type { RoutingConfig } from '../config.js';
import { promptMedia } from '../prompts.js';
import { defineDestination, type Named } from './kind.js';

/** A recorded sound or TTS text, played to the end; then `then`, or the stage's next step. */
export const announcement = defineDestination({
  kind: 'announcement',
  settings: { at: 'routing.announcements' },
  loops: true,
  async reach(dest: Named<'announcement'>, run, scope, announcements: RoutingConfig['announcements']) {
    const a = announcements[dest.name];
    if (!a) return run.fallback(scope, 'unknown-destination');
    const media = await promptMedia(a, run.call, run.services, { language: a.language ?? run.language(scope), voice: a.voice ?? scope.route.voice });
    const outcome = await run.play(media, `announcement ${dest.name}`);
    if (!run.call.active) return 'handed-off';
    if (outcome === 'failed') run.call.log.warn({ step: scope.where, announcement: dest.name }, 'Asterisk could not play the announcement');
    if (a.then) return run.go(a.then, scope);
    run.left(scope, `announcement:${dest.name} → next step`);
    return 'next';
  },
});
