import { z } from 'zod';
import { render } from '../../template.js';
import { defineStep, Step, type StepResult } from '../step.js';
import type { CallSession } from '../session.js';
import type { StepServices } from '../services.js';

const soundName = z
  .string()
  .regex(/^[A-Za-z0-9_\-/.:]+$/, 'a sound name like "hello-world" or "custom/welcome"')
  .refine((s) => !s.includes('..'), 'a sound name may not contain ".."');

const sayObject = z
  .object({
    text: z.string().min(1).optional(),
    sound: soundName.optional(),
    language: z.string().optional(),
    voice: z.string().optional(),
  })
  .strict()
  .refine((v) => (v.text === undefined) !== (v.sound === undefined), 'give either text (spoken by TTS) or sound (a recorded prompt), not both');

export const saySchema = z.union([z.string().min(1).transform((text) => ({ text })), sayObject]);
type SayConfig = z.output<typeof saySchema> & { sound?: string; language?: string; voice?: string };

class Say extends Step<SayConfig> {
  readonly kind = 'say';

  async run(call: CallSession, services: StepServices): Promise<StepResult> {
    const media = await this.media(call, services);
    await call.ensureAnswered();
    const outcome = await call.channel.play(media, call.signal);
    call.log.info({ step: this.where, outcome }, 'prompt played');
    if (outcome === 'failed') throw new Error(`${this.where}: Asterisk could not play ${media}`);
    return call.active ? 'next' : 'handed-off';
  }

  private async media(call: CallSession, services: StepServices): Promise<string> {
    if (this.config.sound) return `sound:${this.config.sound}`;
    const { text, missing } = render(this.config.text!, call.vars);
    if (missing.length) call.log.warn({ step: this.where, missing }, 'merge fields without a value');
    return services.tts.speak(text, { language: this.config.language, voice: this.config.voice });
  }
}

export const say = defineStep({
  kind: 'say',
  description: 'Speak text to the caller by TTS, or play a recorded sound; waits until it has been played to the end.',
  schema: saySchema,
  create: (config, where) => new Say(config as SayConfig, where),
});
