import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { CacheLimit } from './cache-limit.js';
import { TtsError, type TtsEngine } from './engine.js';

export interface TtsRequest {
  engine: string;
  language: string;
  voice?: string;
  text: string;
}

export interface CachedAudio {
  /** 32 lowercase hex characters; also the file name (`<id>.wav`) and the HTTP ETag. */
  id: string;
  path: string;
  bytes: number;
}

export interface TtsCache {
  readonly dir: string;
  /** Returns the cached file, synthesizing it first if needed. Rejects with the engine's TtsError. */
  get(req: TtsRequest): Promise<CachedAudio>;
  /** The file for an id, or undefined when the id is malformed, so no other path can be reached. */
  path(id: string): string | undefined;
}

export interface TtsCacheOptions {
  dir: string;
  engines: Readonly<Record<string, TtsEngine>>;
  log?: Logger;
  /** the folder is kept under this many bytes, least recently used files going first */
  maxBytes?: number;
}

/**
 * Part of every key: bump it when the audio an engine produces for the same input changes
 * (another sample rate, other sox options), so old files are no longer served.
 */
const KEY_VERSION = 'tts-v1';
const ID_RE = /^[0-9a-f]{32}$/;

export function isTtsId(id: string): boolean {
  return ID_RE.test(id);
}

export function ttsId(req: TtsRequest): string {
  // An array fixes the order of the fields, so the same request always hashes the same.
  const canonical = JSON.stringify([KEY_VERSION, req.engine, req.language, req.voice || null, req.text]);
  return createHash('sha256').update(canonical, 'utf8').digest('hex').slice(0, 32);
}

export function createTtsCache(opts: TtsCacheOptions): TtsCache {
  const { dir, engines, log } = opts;
  const inflight = new Map<string, Promise<CachedAudio>>();
  const limit = opts.maxBytes !== undefined ? new CacheLimit(dir, opts.maxBytes, log) : undefined;

  const fileFor = (id: string): string => join(dir, `${id}.wav`);

  async function produce(id: string, engine: TtsEngine, req: TtsRequest): Promise<CachedAudio> {
    const file = fileFor(id);
    const existing = await sizeOf(file);
    if (existing) return { id, path: file, bytes: existing };

    const started = performance.now();
    const wav = await engine.synthesize(req.text, { language: req.language, voice: req.voice });
    await mkdir(dir, { recursive: true });
    // Readers (Asterisk fetching over HTTP) must never see a half-written file.
    const tmp = join(dir, `.${id}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      await writeFile(tmp, wav, { flag: 'wx' });
      await rename(tmp, file);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
    // The text itself may carry a caller's personal data, so only its size is logged.
    log?.debug(
      { id, engine: engine.name, language: req.language, chars: req.text.length, bytes: wav.length, ms: Math.round(performance.now() - started) },
      'tts synthesized',
    );
    return { id, path: file, bytes: wav.length };
  }

  return {
    dir,
    path: (id) => (isTtsId(id) ? fileFor(id) : undefined),
    get(req) {
      // hasOwn keeps names like "constructor" from resolving to something on the prototype.
      const engine = Object.hasOwn(engines, req.engine) ? engines[req.engine] : undefined;
      if (!engine) return Promise.reject(new TtsError('engine-failed', `unknown TTS engine '${req.engine}'`));
      const id = ttsId(req);
      const pending = inflight.get(id);
      if (pending) return pending;
      const p = produce(id, engine, req)
        .then((audio) => {
          limit?.used(audio.id, audio.bytes);
          return audio;
        })
        .finally(() => inflight.delete(id));
      inflight.set(id, p);
      return p;
    },
  };
}

async function sizeOf(file: string): Promise<number | undefined> {
  try {
    const s = await stat(file);
    return s.isFile() && s.size > 0 ? s.size : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
