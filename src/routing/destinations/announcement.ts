import { z } from 'zod';
import { promptMedia } from '../prompts.js';
import { soundName } from '../settings.js';
import { defineDestination, namedEntries, type SchemaKit } from './kind.js';

const announcementSchema = (kit: SchemaKit) =>
  z
    .object({
      text: z.string().min(1).optional(),
      sound: soundName.optional(),
      language: z.string().min(2).optional(),
      voice: z.string().optional(),
      then: kit.destination.optional().describe('where the caller goes afterwards; default: the stage\'s next step'),
    })
    .strict()
    .refine((v) => (v.text === undefined) !== (v.sound === undefined), 'give either text (spoken by TTS) or sound (a recorded prompt)');

/** A recorded sound or TTS text, played to the end; then `then`, or the stage's next step. */
export const announcement = defineDestination({
  ...namedEntries('announcement', 'announcements', announcementSchema),
  checkSettings(announcements, c) {
    for (const [name, a] of Object.entries(announcements)) c.destination(a.then, [name, 'then']);
  },
  loops: true,
  async reach(dest, run, scope, announcements) {
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
