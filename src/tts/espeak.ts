import {
  TtsError,
  TTS_SAMPLE_RATE,
  exceedsLength,
  finalizeWav,
  runPipeline,
  type SpawnFn,
  type SynthesizeOptions,
  type TtsEngine,
} from './engine.js';

export interface EspeakEngineOptions {
  espeakPath?: string;
  soxPath?: string;
  /** For the whole espeak-ng | sox pipeline; a sentence takes ~20 ms, so this only stops runaways. */
  timeoutMs?: number;
  /** In characters (code points). */
  maxChars?: number;
  spawn?: SpawnFn;
}

/**
 * Where a bare language would get espeak-ng's own pick, callers on a phone line expect another
 * one (espeak-ng ranks en-gb first for `en`).
 */
const PREFERRED_VOICE: Readonly<Record<string, string>> = {
  en: 'en-us',
  'en-uk': 'en-gb',
};

/**
 * The voice list is read once per engine and shared by every call, so a tight per-call timeout
 * must not make it fail for all of them.
 */
const VOICE_LIST_TIMEOUT_MS = 5000;

const LANGUAGE_RE = /^[a-z]{2,3}(?:-[a-z0-9]{1,8})*$/;
// Voice specs become a command-line argument: no leading '-', nothing beyond what espeak-ng names use.
const VOICE_RE = /^[a-z0-9][a-z0-9-]*$/;
const VARIANT_RE = /^[a-z0-9][a-z0-9_-]*$/;
/**
 * espeak-ng reads Ctrl-A as the start of an embedded command (speed, pitch, volume), so text from
 * an API response could slow speech to a crawl; other control characters have no use in speech.
 */
const CONTROL_RE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g;

export function createEspeakEngine(options: EspeakEngineOptions = {}): TtsEngine {
  const espeakPath = options.espeakPath ?? 'espeak-ng';
  const soxPath = options.soxPath ?? 'sox';
  const timeoutMs = options.timeoutMs ?? 5000;
  const maxChars = options.maxChars ?? 1000;
  const spawn = options.spawn;

  let languages: Promise<Set<string>> | undefined;
  const knownLanguages = (): Promise<Set<string>> => {
    languages ??= runPipeline([{ command: espeakPath, args: ['--voices'] }], {
      input: '',
      timeoutMs: Math.max(timeoutMs, VOICE_LIST_TIMEOUT_MS),
      spawn,
    }).then(
      (out) => parseVoiceList(out.toString('utf8')),
      (err: unknown) => {
        // A transient failure (e.g. a timeout under load) must not poison every later call.
        languages = undefined;
        throw err;
      },
    );
    return languages;
  };

  return {
    name: 'espeak-ng',
    async synthesize(text: string, opts: SynthesizeOptions): Promise<Buffer> {
      if (exceedsLength(text, maxChars)) {
        throw new TtsError('too-long', `text is longer than ${maxChars} characters`);
      }
      const voice = resolveVoice(opts.language, opts.voice, await knownLanguages());
      const wav = await runPipeline(
        [
          // --stdin reads the whole text at once (not line by line); -b 1 declares it UTF-8.
          { command: espeakPath, args: ['--stdout', '--stdin', '-b', '1', '-v', voice] },
          {
            command: soxPath,
            // -V1 keeps stderr for real failures: sox always warns that it cannot fix the
            // length header of WAV written to a pipe, which finalizeWav does instead.
            args: ['-V1', '-t', 'wav', '-', '-r', String(TTS_SAMPLE_RATE), '-c', '1', '-b', '16', '-e', 'signed-integer', '-t', 'wav', '-'],
          },
        ],
        { input: text.replace(CONTROL_RE, ' '), timeoutMs, signal: opts.signal, spawn },
      );
      return finalizeWav(wav);
    },
  };
}

/** Language codes from `espeak-ng --voices`, including the "other languages" each voice answers to. */
export function parseVoiceList(out: string): Set<string> {
  const known = new Set<string>();
  for (const line of out.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    const lang = cols[1];
    if (lang) known.add(lang.toLowerCase());
    for (const m of line.matchAll(/\(([a-z0-9-]+) \d+\)/gi)) if (m[1]) known.add(m[1].toLowerCase());
  }
  return known;
}

/**
 * Turns (language, voice) into the value of espeak-ng's `-v`. `voice` may be a full voice
 * (`en-gb`, `en-us+f3`) or just a variant (`+f3`) applied to the language's voice.
 */
export function resolveVoice(language: string, voice: string | undefined, known: ReadonlySet<string>): string {
  const lang = language.trim().toLowerCase().replace(/_/g, '-');
  const primary = lang.split('-')[0] ?? '';
  const candidates = LANGUAGE_RE.test(lang) ? [PREFERRED_VOICE[lang] ?? lang, PREFERRED_VOICE[primary] ?? primary] : [];
  const base = candidates.find((c) => known.has(c));
  if (!base) throw new TtsError('unsupported-language', `espeak-ng has no voice for language '${language}'`);
  if (voice === undefined || voice === '') return base;

  const spec = voice.trim().toLowerCase();
  const plus = spec.indexOf('+');
  const name = plus === -1 ? spec : spec.slice(0, plus);
  const variant = plus === -1 ? undefined : spec.slice(plus + 1);
  if (variant !== undefined && !VARIANT_RE.test(variant)) {
    throw new TtsError('unsupported-language', `invalid espeak-ng voice variant in '${voice}'`);
  }
  if (name === '') return `${base}+${variant}`;
  if (!VOICE_RE.test(name) || !known.has(name)) {
    throw new TtsError('unsupported-language', `espeak-ng has no voice '${voice}'`);
  }
  return variant === undefined ? name : `${name}+${variant}`;
}
