import type { Speaker } from '../calls/services.js';
import type { Logger } from '../log.js';
import { createTtsCache } from './cache.js';
import { createEspeakEngine } from './espeak.js';
import { createMediaHandler, mediaUri, type MediaHandler } from './media.js';
import { createOpenJtalkEngine } from './openjtalk.js';

export type EngineName = 'espeak-ng' | 'open-jtalk';

export interface TtsOptions {
  engine: EngineName;
  /** engine per language code, over `engine` */
  engines: Readonly<Record<string, EngineName>>;
  language: string;
  voice?: string;
  cacheDir: string;
  maxChars: number;
  timeout: number;
  /** tts.cacheSize: the cache folder's cap in bytes */
  cacheSize?: number;
}

/**
 * Speech for steps: the engine for the language (tts.engines, else tts.engine), synthesised once
 * into the cache and served to Asterisk from `/media/` (the handler the HTTP server mounts).
 */
export function createSpeech(o: TtsOptions, log: Logger): { media: MediaHandler; speaker(mediaBase: string): Speaker } {
  const engines = {
    'espeak-ng': createEspeakEngine({ timeoutMs: o.timeout, maxChars: o.maxChars }),
    'open-jtalk': createOpenJtalkEngine({ timeoutMs: o.timeout, maxChars: o.maxChars }),
  };
  const cache = createTtsCache({ dir: o.cacheDir, engines, log, maxBytes: o.cacheSize });
  return {
    media: createMediaHandler({ cache, prefix: '/media/' }),
    speaker: (mediaBase) => ({
      async speak(text, s) {
        const language = s.language ?? o.language;
        const engine = o.engines[language.toLowerCase().split(/[-_]/)[0] ?? ''] ?? o.engine;
        // tts.voice names a voice of tts.engine; another engine picks its own default
        const voice = s.voice ?? (engine === o.engine ? o.voice : undefined);
        const audio = await cache.get({ engine, language, voice, text });
        return mediaUri(mediaBase, audio.id);
      },
    }),
  };
}
