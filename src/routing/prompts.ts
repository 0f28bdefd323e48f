import type { CallSession } from '../calls/session.js';
import { render } from '../template.js';
import { normaliseForSpeech } from '../tts/normalise.js';
import type { StepServices } from '../calls/services.js';
import type { GatherConfig, Prompt } from './settings.js';

/**
 * Prompts and keys: what the gather step, IVR menus and interactive integrations share. A key
 * pressed during a prompt stops it (callers who know the menu need not listen to it again) and
 * counts as the first key.
 */

export interface SpeakDefaults {
  language?: string;
  voice?: string;
}

/** The media Asterisk plays for a configured prompt; its text may use merge fields. */
export async function promptMedia(p: Prompt, call: CallSession, services: StepServices, d: SpeakDefaults = {}): Promise<string> {
  if (p.sound) return `sound:${p.sound}`;
  const { text } = render(p.text ?? '', call.vars);
  return services.tts.speak(text, { language: p.language ?? d.language, voice: p.voice ?? d.voice });
}

/** Text that came from outside (an API's `data`): never read as a template, normalised for speech. */
export function textMedia(text: string, services: StepServices, language: string, voice?: string): Promise<string> {
  return services.tts.speak(normaliseForSpeech(text, language), { language, voice });
}

export type GatherEnd = 'max' | 'terminator' | 'timeout' | 'hangup';

export interface Collected {
  digits: string;
  ended: GatherEnd;
}

export interface CollectOptions {
  /** played first; a key stops it */
  prompt?: string;
  maxDigits: number;
  /** '' for none */
  terminator: string;
  /** after the prompt, for the first key */
  timeoutMs: number;
  interDigitTimeoutMs: number;
}

export function collectDigits(call: CallSession, o: CollectOptions): Promise<Collected> {
  return new Promise<Collected>((resolve) => {
    let digits = '';
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const bargeIn = new AbortController();
    const finish = (ended: GatherEnd) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      off();
      call.signal.removeEventListener('abort', onHangup);
      bargeIn.abort();
      resolve({ digits, ended });
    };
    const arm = (ms: number) => {
      clearTimeout(timer);
      timer = setTimeout(() => finish('timeout'), ms);
    };
    const off = call.channel.on('ChannelDtmfReceived', (ev) => {
      if (done) return;
      bargeIn.abort();
      if (o.terminator !== '' && ev.digit === o.terminator) return finish('terminator');
      digits += ev.digit;
      if (digits.length >= o.maxDigits) return finish('max');
      arm(o.interDigitTimeoutMs);
    });
    const onHangup = () => finish('hangup');
    if (call.signal.aborted) return finish('hangup');
    call.signal.addEventListener('abort', onHangup, { once: true });
    if (!o.prompt) return arm(o.timeoutMs);
    const afterPrompt = () => {
      if (!done && digits === '') arm(o.timeoutMs);
    };
    call.channel.play(o.prompt, AbortSignal.any([bargeIn.signal, call.signal])).then(afterPrompt, afterPrompt);
  });
}

/** The gather settings an interactive integration uses when it names none: the answer's data was the prompt. */
export const DEFAULT_GATHER: GatherConfig = {
  maxDigits: 20,
  minDigits: 1,
  terminator: '#',
  timeout: 5000,
  interDigitTimeout: 3000,
  retries: 1,
  var: 'digits',
};

/** Prompts, collects, and prompts again while too few keys came; '' when the caller typed nothing usable. */
export async function gather(call: CallSession, services: StepServices, g: GatherConfig, d: SpeakDefaults = {}, promptOverride?: string): Promise<Collected> {
  const defaults = { language: g.language ?? d.language, voice: d.voice };
  const prompt = promptOverride ?? (g.prompt ? await promptMedia(g.prompt, call, services, defaults) : undefined);
  const invalid = g.invalidPrompt ? await promptMedia(g.invalidPrompt, call, services, defaults) : undefined;
  if (prompt || invalid) await call.ensureAnswered();
  let last: Collected = { digits: '', ended: 'timeout' };
  for (let attempt = 0; attempt <= g.retries; attempt++) {
    if (attempt > 0 && invalid) await call.channel.play(invalid, call.signal);
    if (!call.active) return { digits: '', ended: 'hangup' };
    last = await collectDigits(call, { prompt, maxDigits: g.maxDigits, terminator: g.terminator, timeoutMs: g.timeout, interDigitTimeoutMs: g.interDigitTimeout });
    call.log.info({ digits: last.digits.length, ended: last.ended, attempt: attempt + 1 }, 'digits gathered');
    if (last.ended === 'hangup' || last.digits.length >= g.minDigits) return last;
  }
  return { digits: '', ended: last.ended };
}
