import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TtsError, TTS_SAMPLE_RATE, exceedsLength, finalizeWav, runPipeline, type SpawnFn, type SynthesizeOptions, type TtsEngine } from './engine.js';

/**
 * Japanese TTS with Open JTalk (Debian: open-jtalk, open-jtalk-mecab-naist-jdic, and the voice
 * hts-voice-nitech-jp-atr503-m001 from contrib). espeak-ng reads Japanese only in kana; Open
 * JTalk reads kanji. Same contract as the espeak-ng engine: no shell, text on stdin, a timeout,
 * 8 kHz mono 16-bit WAV out (the voice speaks at 48 kHz; sox resamples).
 */
export interface OpenJtalkEngineOptions {
  openJtalkPath?: string;
  soxPath?: string;
  dictionaryDir?: string;
  /** The default .htsvoice file. */
  voicePath?: string;
  timeoutMs?: number;
  maxChars?: number;
  spawn?: SpawnFn;
}

export const DEFAULT_DICTIONARY = '/var/lib/mecab/dic/open-jtalk/naist-jdic';
export const DEFAULT_VOICE = '/usr/share/hts-voice/nitech-jp-atr503-m001/nitech_jp_atr503_m001.htsvoice';

const CONTROL_RE = /[\u0000-\u001f\u007f]+/g;
// A voice is a file path handed to open_jtalk: absolute, no leading '-', ending in .htsvoice.
const VOICE_PATH_RE = /^\/[A-Za-z0-9_./-]+\.htsvoice$/;

export function createOpenJtalkEngine(options: OpenJtalkEngineOptions = {}): TtsEngine {
  const bin = options.openJtalkPath ?? 'open_jtalk';
  const soxPath = options.soxPath ?? 'sox';
  const dictionary = options.dictionaryDir ?? DEFAULT_DICTIONARY;
  const defaultVoice = options.voicePath ?? DEFAULT_VOICE;
  const timeoutMs = options.timeoutMs ?? 5000;
  const maxChars = options.maxChars ?? 1000;

  return {
    name: 'open-jtalk',
    async synthesize(text: string, opts: SynthesizeOptions): Promise<Buffer> {
      const lang = opts.language.trim().toLowerCase().replace(/_/g, '-');
      if (lang !== 'ja' && !lang.startsWith('ja-')) throw new TtsError('unsupported-language', `Open JTalk speaks only Japanese, not '${opts.language}'`);
      if (exceedsLength(text, maxChars)) throw new TtsError('too-long', `text is longer than ${maxChars} characters`);
      const voice = opts.voice ? opts.voice : defaultVoice;
      if (!VOICE_PATH_RE.test(voice) || voice.includes('..')) throw new TtsError('unsupported-language', `Open JTalk voice must be an absolute .htsvoice path, not '${opts.voice}'`);
      if (!existsSync(voice)) throw new TtsError('engine-failed', `Open JTalk voice ${voice} is not installed (Debian: hts-voice-nitech-jp-atr503-m001, in contrib)`);
      // Open JTalk treats every input line as its own utterance; one line keeps the prosody whole.
      const input = text.replace(CONTROL_RE, ' ').trim();
      if (input === '') throw new TtsError('engine-failed', 'nothing to say');
      // open_jtalk writes WAV only to a named file, and Node's stdio pipes are sockets, which
      // /dev/stdout cannot reopen: a private temporary file it is.
      const dir = await mkdtemp(join(tmpdir(), 'call-actions-jtalk-'));
      const file = join(dir, 'speech.wav');
      const started = Date.now();
      try {
        await runPipeline([{ command: bin, args: ['-x', dictionary, '-m', voice, '-ow', file] }], {
          input: input + '\n',
          timeoutMs,
          signal: opts.signal,
          spawn: options.spawn,
        });
        const wav = await runPipeline(
          [{ command: soxPath, args: ['-V1', file, '-r', String(TTS_SAMPLE_RATE), '-c', '1', '-b', '16', '-e', 'signed-integer', '-t', 'wav', '-'] }],
          { input: '', timeoutMs: Math.max(1, timeoutMs - (Date.now() - started)), signal: opts.signal, spawn: options.spawn },
        );
        return finalizeWav(wav);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
