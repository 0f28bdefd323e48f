import { spawn as nodeSpawn, type ChildProcess } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { TtsError, type SpawnFn } from '../../src/tts/engine.js';
import { createEspeakEngine } from '../../src/tts/espeak.js';
import { normaliseForSpeech } from '../../src/tts/normalise.js';
import { createOpenJtalkEngine } from '../../src/tts/openjtalk.js';

/** Samples of a WAV as this test reads them (not through the code under test). */
function audio(buf: Buffer): { rate: number; channels: number; bits: number; seconds: number; rms: number; peak: number } {
  expect(buf.toString('ascii', 0, 4)).toBe('RIFF');
  let off = 12;
  let fmt = { rate: 0, channels: 0, bits: 0 };
  while (off + 8 <= buf.length) {
    const id = buf.toString('ascii', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    if (id === 'fmt ') fmt = { channels: buf.readUInt16LE(off + 10), rate: buf.readUInt32LE(off + 12), bits: buf.readUInt16LE(off + 22) };
    if (id === 'data') {
      let sum = 0;
      let peak = 0;
      const n = Math.floor(size / 2);
      for (let i = 0; i < n; i++) {
        const v = buf.readInt16LE(off + 8 + 2 * i);
        sum += v * v;
        peak = Math.max(peak, Math.abs(v));
      }
      return { ...fmt, seconds: n / 8000, rms: Math.sqrt(sum / Math.max(1, n)), peak };
    }
    off += 8 + size + (size % 2);
  }
  throw new Error('no data chunk');
}

describe('normaliseForSpeech', () => {
  it('speaks all-caps words as words, lower-cased by the rules of the language', () => {
    expect(normaliseForSpeech('Sayın MEHMET YILMAZ, İSTANBUL şubemize hoş geldiniz', 'tr')).toBe('Sayın Mehmet Yılmaz, İstanbul şubemize hoş geldiniz');
    expect(normaliseForSpeech('PLEASE CALL US NOW', 'en')).toBe('Please Call Us Now');
    expect(normaliseForSpeech('Dzień dobry PANI ŻANETO', 'pl')).toBe('Dzień dobry Pani Żaneto');
  });

  it('leaves mixed-case words, single letters, digits and Japanese alone; drops masking stars and control characters', () => {
    expect(normaliseForSpeech('iPhone A 4711 McDonald', 'en')).toBe('iPhone A 4711 McDonald');
    expect(normaliseForSpeech('お電話ありがとうございます', 'ja')).toBe('お電話ありがとうございます');
    expect(normaliseForSpeech('Sayın A** M**\u0001 hoş geldiniz', 'tr')).toBe('Sayın A M  hoş geldiniz');
  });

  it('makes espeak-ng say an all-caps word instead of spelling it (shorter audio)', async () => {
    const engine = createEspeakEngine();
    const caps = audio(await engine.synthesize('CALL US NOW', { language: 'en' }));
    const fixed = audio(await engine.synthesize(normaliseForSpeech('CALL US NOW', 'en'), { language: 'en' }));
    // "U S" spelled out is a syllable longer than "us"
    expect(caps.seconds - fixed.seconds).toBeGreaterThan(0.1);
  });
});

describe('speech in the seeds\' languages is non-silent 8 kHz mono 16-bit audio', () => {
  const cases = [
    ['tr', 'espeak-ng', 'Sayın Ayşe Yılmaz, Netsantral\'e hoş geldiniz. Sizi müşteri temsilcinize aktarıyorum.'],
    ['pl', 'espeak-ng', 'Dzień dobry, dziękujemy za telefon. Łączymy z konsultantem.'],
    ['en', 'espeak-ng', 'Welcome back. Connecting you to support.'],
    ['ja', 'open-jtalk', 'お電話ありがとうございます。担当者におつなぎします。'],
  ] as const;
  for (const [language, engineName, text] of cases) {
    it(`${language} (${engineName})`, async () => {
      const engine = engineName === 'open-jtalk' ? createOpenJtalkEngine() : createEspeakEngine();
      const a = audio(await engine.synthesize(text, { language }));
      expect({ rate: a.rate, channels: a.channels, bits: a.bits }).toEqual({ rate: 8000, channels: 1, bits: 16 });
      expect(a.seconds).toBeGreaterThan(1.5);
      expect(a.rms).toBeGreaterThan(300);
      expect(a.peak).toBeGreaterThan(3000);
    });
  }

  it('Open JTalk reads kanji (espeak-ng would not), within the length limit, only Japanese', async () => {
    const engine = createOpenJtalkEngine({ maxChars: 20 });
    const a = audio(await engine.synthesize('東京都', { language: 'ja-JP' }));
    expect(a.seconds).toBeGreaterThan(0.5);
    await expect(engine.synthesize('あ'.repeat(21), { language: 'ja' })).rejects.toMatchObject({ kind: 'too-long' });
    await expect(engine.synthesize('hello', { language: 'en' })).rejects.toBeInstanceOf(TtsError);
    await expect(engine.synthesize('こんにちは', { language: 'ja', voice: '/etc/passwd' })).rejects.toMatchObject({ kind: 'unsupported-language' });
  });

  it('Open JTalk runs without a shell, text on stdin, and leaves no process behind on timeout', async () => {
    const children: Array<{ command: string; args: readonly string[]; child: ChildProcess }> = [];
    const spawn: SpawnFn = (command, args, options) => {
      const child = nodeSpawn(command, args, options);
      children.push({ command, args, child });
      return child;
    };
    const text = '$(touch /tmp/pwned); `id` 東京';
    const a = audio(await createOpenJtalkEngine({ spawn }).synthesize(text, { language: 'ja' }));
    expect(a.seconds).toBeGreaterThan(0.3);
    expect(children.map((c) => c.command)).toEqual(['open_jtalk', 'sox']);
    expect(children.flatMap((c) => c.args).join(' ')).not.toContain('pwned');
    children.length = 0;
    await expect(createOpenJtalkEngine({ spawn, timeoutMs: 1 }).synthesize('長い文章'.repeat(50), { language: 'ja' })).rejects.toMatchObject({ kind: 'timeout' });
    for (const c of children) expect(c.child.exitCode !== null || c.child.signalCode !== null).toBe(true);
  });
});
