import { spawn as nodeSpawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTtsCache, ttsId, type TtsCache } from '../../src/tts/cache.js';
import { TtsError, type SpawnFn, type TtsEngine } from '../../src/tts/engine.js';
import { createEspeakEngine } from '../../src/tts/espeak.js';
import { createMediaHandler, mediaUri } from '../../src/tts/media.js';

const SENTENCE = 'Thank you for calling. Your estimated wait time is three minutes.';

/** Parsed independently of the code under test, so a wrong header cannot agree with itself. */
function readWav(buf: Buffer) {
  expect(buf.toString('ascii', 0, 4)).toBe('RIFF');
  expect(buf.toString('ascii', 8, 12)).toBe('WAVE');
  let off = 12;
  let fmt: { format: number; channels: number; rate: number; byteRate: number; blockAlign: number; bits: number } | undefined;
  while (off + 8 <= buf.length) {
    const id = buf.toString('ascii', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    if (id === 'fmt ') {
      fmt = {
        format: buf.readUInt16LE(off + 8),
        channels: buf.readUInt16LE(off + 10),
        rate: buf.readUInt32LE(off + 12),
        byteRate: buf.readUInt32LE(off + 16),
        blockAlign: buf.readUInt16LE(off + 20),
        bits: buf.readUInt16LE(off + 22),
      };
    }
    if (id === 'data') {
      const data = buf.subarray(off + 8);
      const samples = new Int16Array(data.buffer.slice(data.byteOffset, data.byteOffset + (data.length & ~1)));
      let sum = 0;
      for (const s of samples) sum += s * s;
      return {
        riffSize: buf.readUInt32LE(4),
        dataSize: size,
        dataAvailable: data.length,
        fmt,
        seconds: samples.length / 8000,
        rms: Math.sqrt(sum / Math.max(1, samples.length)),
      };
    }
    off += 8 + size + (size % 2);
  }
  throw new Error('no data chunk');
}

/** Records every child the engine starts, so tests can see what ran and that it is gone. */
function recordingSpawn(): { spawn: SpawnFn; children: { command: string; args: readonly string[]; child: ChildProcess }[] } {
  const children: { command: string; args: readonly string[]; child: ChildProcess }[] = [];
  const spawn: SpawnFn = (command, args, options) => {
    const child = nodeSpawn(command, args, options);
    children.push({ command, args, child });
    return child;
  };
  return { spawn, children };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function counting(engine: TtsEngine): TtsEngine & { calls: number } {
  const wrapped = {
    name: engine.name,
    calls: 0,
    synthesize(text: string, opts: Parameters<TtsEngine['synthesize']>[1]) {
      wrapped.calls++;
      return engine.synthesize(text, opts);
    },
  };
  return wrapped;
}

async function expectTtsError(p: Promise<unknown>, kind: TtsError['kind']): Promise<TtsError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TtsError);
  expect((err as TtsError).kind).toBe(kind);
  return err as TtsError;
}

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'call-actions-tts-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('espeak-ng engine', () => {
  const engine = createEspeakEngine();

  it('speaks English as 8 kHz mono 16-bit WAV with a correct header and audible samples', async () => {
    const wav = await engine.synthesize(SENTENCE, { language: 'en' });
    const info = readWav(wav);
    expect(info.fmt).toEqual({ format: 1, channels: 1, rate: 8000, byteRate: 16000, blockAlign: 2, bits: 16 });
    expect(info.riffSize).toBe(wav.length - 8);
    expect(info.dataSize).toBe(info.dataAvailable);
    expect(info.dataSize).toBeGreaterThan(0);
    expect(info.seconds).toBeGreaterThan(2);
    expect(info.seconds).toBeLessThan(10);
    // Silence is 0; espeak-ng speech sits in the thousands.
    expect(info.rms).toBeGreaterThan(500);
  });

  it('makes longer audio for longer text', async () => {
    const short = readWav(await engine.synthesize('Hello there.', { language: 'en' }));
    const long = readWav(await engine.synthesize(`${SENTENCE} ${SENTENCE} ${SENTENCE}`, { language: 'en' }));
    expect(long.seconds).toBeGreaterThan(short.seconds * 3);
    const one = readWav(await engine.synthesize(SENTENCE, { language: 'en' }));
    expect(long.seconds / one.seconds).toBeGreaterThan(2.5);
    expect(long.seconds / one.seconds).toBeLessThan(3.5);
  });

  it('speaks Polish, Turkish and a region-qualified code', async () => {
    for (const language of ['pl', 'tr', 'en-US', 'pl_PL']) {
      const info = readWav(await engine.synthesize('Dzień dobry, günaydın.', { language }));
      expect(info.rms, language).toBeGreaterThan(500);
    }
  });

  it('passes shell metacharacters to the speaker as text, never to a shell', async () => {
    const dir = await mkdtemp(join(root, 'shell-'));
    const canary = join(dir, 'canary');
    await mkdir(canary);
    const pwned = join(dir, 'pwned');
    // rm targets a scratch directory: if this test ever fails, it must not take the machine with it.
    const text = `$(touch ${pwned}); \`touch ${pwned}2\`; rm -rf ${canary} "quote" 'single' & | ; > ${pwned}3`;
    const wav = await engine.synthesize(text, { language: 'en' });
    const info = readWav(wav);
    expect(info.rms).toBeGreaterThan(500);
    expect(info.seconds).toBeGreaterThan(3);
    expect(existsSync(pwned)).toBe(false);
    expect(existsSync(`${pwned}2`)).toBe(false);
    expect(existsSync(`${pwned}3`)).toBe(false);
    expect(existsSync(canary)).toBe(true);
  });

  it('speaks text that starts with a dash instead of reading it as an option', async () => {
    const info = readWav(await engine.synthesize('--help -v xx hello', { language: 'en' }));
    expect(info.rms).toBeGreaterThan(500);
  });

  it('ignores the control characters espeak-ng would read as speed and pitch commands', async () => {
    // Ctrl-A 30S would set 30 words a minute: a few words would take many seconds.
    const plain = readWav(await engine.synthesize(' 30S hello there my friend', { language: 'en' }));
    const sneaky = readWav(await engine.synthesize('\u000130S hello there my friend', { language: 'en' }));
    expect(sneaky.seconds).toBeLessThan(plain.seconds * 1.2);
  });

  it('rejects text over maxChars before starting anything', async () => {
    const rec = recordingSpawn();
    const small = createEspeakEngine({ maxChars: 20, spawn: rec.spawn });
    await expectTtsError(small.synthesize('x'.repeat(21), { language: 'en' }), 'too-long');
    expect(rec.children).toHaveLength(0);
    // The limit counts characters, not UTF-16 units: 20 emoji are 40 units but fit.
    const ok = await small.synthesize('😀'.repeat(20), { language: 'en' });
    expect(readWav(ok).dataSize).toBeGreaterThan(0);
  });

  it('times out, and leaves no child process behind', async () => {
    const rec = recordingSpawn();
    const slow = createEspeakEngine({ timeoutMs: 1, maxChars: 5000, spawn: rec.spawn });
    await expectTtsError(slow.synthesize(SENTENCE.repeat(40), { language: 'en' }), 'timeout');
    const pipeline = rec.children.filter((c) => !c.args.includes('--voices'));
    expect(pipeline.map((c) => c.command)).toEqual(['espeak-ng', 'sox']);
    for (const { child } of pipeline) {
      expect(child.pid).toBeTypeOf('number');
      expect(isAlive(child.pid!), `pid ${child.pid} still alive`).toBe(false);
    }
  });

  it('stops both children when the caller aborts', async () => {
    const rec = recordingSpawn();
    const ac = new AbortController();
    const abortable = createEspeakEngine({
      maxChars: 5000,
      spawn: (command, args, options) => {
        const child = rec.spawn(command, args, options);
        if (command === 'sox') setImmediate(() => ac.abort());
        return child;
      },
    });
    await expectTtsError(abortable.synthesize(SENTENCE.repeat(40), { language: 'en', signal: ac.signal }), 'aborted');
    const pipeline = rec.children.filter((c) => !c.args.includes('--voices'));
    expect(pipeline).toHaveLength(2);
    for (const { child } of pipeline) expect(isAlive(child.pid!)).toBe(false);
  });

  it('rejects an unknown language or voice without running a synthesis', async () => {
    const rec = recordingSpawn();
    const e = createEspeakEngine({ spawn: rec.spawn });
    await expectTtsError(e.synthesize('hello', { language: 'xx' }), 'unsupported-language');
    await expectTtsError(e.synthesize('hello', { language: 'en; rm -rf /' }), 'unsupported-language');
    await expectTtsError(e.synthesize('hello', { language: 'en', voice: '--help' }), 'unsupported-language');
    await expectTtsError(e.synthesize('hello', { language: 'en', voice: 'nosuchvoice' }), 'unsupported-language');
    expect(rec.children.filter((c) => !c.args.includes('--voices'))).toHaveLength(0);
  });

  it('reports a missing binary as engine-failed', async () => {
    const e = createEspeakEngine({ soxPath: 'call-actions-no-such-sox' });
    const err = await expectTtsError(e.synthesize('hello', { language: 'en' }), 'engine-failed');
    expect(err.message).toContain('call-actions-no-such-sox');
  });
});

describe('TTS cache', () => {
  it('synthesizes once and serves later requests from disk', async () => {
    const dir = join(root, 'cache-once');
    const engine = counting(createEspeakEngine());
    const cache = createTtsCache({ dir, engines: { espeak: engine } });
    const req = { engine: 'espeak', language: 'en', text: SENTENCE };

    const t0 = performance.now();
    const first = await cache.get(req);
    const cold = performance.now() - t0;
    expect(first.id).toMatch(/^[0-9a-f]{32}$/);
    expect(first.id).toBe(ttsId(req));
    expect(first.path).toBe(join(dir, `${first.id}.wav`));
    const onDisk = await readFile(first.path);
    expect(onDisk.length).toBe(first.bytes);
    expect(readWav(onDisk).dataSize).toBe(first.bytes - 44);
    const mtime = (await stat(first.path)).mtimeMs;

    const t1 = performance.now();
    const second = await cache.get(req);
    const hit = performance.now() - t1;
    expect(second).toEqual(first);
    expect(engine.calls).toBe(1);
    expect((await stat(first.path)).mtimeMs).toBe(mtime);

    // A restarted service finds the file too.
    const again = counting(createEspeakEngine());
    await createTtsCache({ dir, engines: { espeak: again } }).get(req);
    expect(again.calls).toBe(0);
    console.info(`tts: cold ${cold.toFixed(1)} ms, cache hit ${hit.toFixed(2)} ms`);
  });

  it('keys on engine, language, voice and text', async () => {
    const base = { engine: 'espeak', language: 'en', text: 'hello' };
    const ids = new Set([
      ttsId(base),
      ttsId({ ...base, engine: 'other' }),
      ttsId({ ...base, language: 'pl' }),
      ttsId({ ...base, voice: '+f3' }),
      ttsId({ ...base, text: 'hello!' }),
    ]);
    expect(ids.size).toBe(5);
    expect(ttsId({ ...base, voice: undefined })).toBe(ttsId(base));
  });

  it('shares one synthesis between concurrent requests', async () => {
    const engine = counting(createEspeakEngine());
    const cache = createTtsCache({ dir: join(root, 'cache-concurrent'), engines: { espeak: engine } });
    const req = { engine: 'espeak', language: 'en', text: 'Please hold.' };
    const [a, b, c] = await Promise.all([cache.get(req), cache.get(req), cache.get({ ...req })]);
    expect(engine.calls).toBe(1);
    expect(b).toEqual(a);
    expect(c).toEqual(a);
  });

  it('leaves no file behind when synthesis fails, and tries again next time', async () => {
    const dir = join(root, 'cache-fail');
    let fail = true;
    const real = createEspeakEngine();
    const flaky: TtsEngine = {
      name: 'flaky',
      synthesize: (text, opts) =>
        fail ? Promise.reject(new TtsError('engine-failed', 'boom')) : real.synthesize(text, opts),
    };
    const cache = createTtsCache({ dir, engines: { flaky } });
    const req = { engine: 'flaky', language: 'en', text: 'Goodbye.' };
    await expectTtsError(cache.get(req), 'engine-failed');
    expect(existsSync(join(dir, `${ttsId(req)}.wav`))).toBe(false);
    fail = false;
    const ok = await cache.get(req);
    expect(ok.bytes).toBeGreaterThan(44);
    // Only the finished file: no temporary files survive the rename.
    expect(await readdir(dir)).toEqual([`${ok.id}.wav`]);
  });

  it('rejects an unknown engine, including names from Object.prototype', async () => {
    const cache = createTtsCache({ dir: join(root, 'cache-unknown'), engines: {} });
    await expectTtsError(cache.get({ engine: 'espeak', language: 'en', text: 'x' }), 'engine-failed');
    await expectTtsError(cache.get({ engine: 'constructor', language: 'en', text: 'x' }), 'engine-failed');
  });

  it('maps only well-formed ids to paths', () => {
    const cache = createTtsCache({ dir: join(root, 'cache-path'), engines: {} });
    const id = 'a'.repeat(32);
    expect(cache.path(id)).toBe(join(root, 'cache-path', `${id}.wav`));
    for (const bad of ['../etc/passwd', `${id}.wav`, 'A'.repeat(32), 'a'.repeat(31), 'a'.repeat(33), `../${id}`, '']) {
      expect(cache.path(bad), bad).toBeUndefined();
    }
  });
});

describe('media handler', () => {
  let cache: TtsCache;
  let server: http.Server;
  let port: number;
  let id: string;
  let audio: Buffer;

  beforeAll(async () => {
    const dir = join(root, 'media', 'cache');
    cache = createTtsCache({ dir, engines: { espeak: createEspeakEngine() } });
    const got = await cache.get({ engine: 'espeak', language: 'en', text: 'Connecting you now.' });
    id = got.id;
    audio = await readFile(got.path);
    // A file one level above the cache: a handler that decoded and joined paths would serve it.
    await writeFile(join(root, 'media', 'secret.wav'), 'secret');
    const handle = createMediaHandler({ cache });
    server = http.createServer((req, res) => {
      if (!handle(req, res)) res.writeHead(418).end('elsewhere');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  /** node:http sends the path exactly as given; fetch would normalise `..` away before sending. */
  function request(method: string, path: string, headers: Record<string, string> = {}) {
    return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('serves the audio with cache headers Asterisk needs', async () => {
    const res = await request('GET', `/media/${id}.wav`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('audio/wav');
    expect(res.headers['content-length']).toBe(String(audio.length));
    expect(res.headers['cache-control']).toBe('public, max-age=86400, immutable');
    expect(res.headers.etag).toBe(`"${id}"`);
    expect(res.body.equals(audio)).toBe(true);
    // A query string (a cache buster) does not change what is served.
    expect((await request('GET', `/media/${id}.wav?x=1`)).status).toBe(200);
  });

  it('answers 304 to a matching If-None-Match and 200 to another', async () => {
    const hit = await request('GET', `/media/${id}.wav`, { 'If-None-Match': `"${id}"` });
    expect(hit.status).toBe(304);
    expect(hit.body.length).toBe(0);
    expect(hit.headers.etag).toBe(`"${id}"`);
    expect(hit.headers['cache-control']).toContain('max-age=86400');
    const listed = await request('GET', `/media/${id}.wav`, { 'If-None-Match': `"nope", W/"${id}"` });
    expect(listed.status).toBe(304);
    const miss = await request('GET', `/media/${id}.wav`, { 'If-None-Match': `"${'0'.repeat(32)}"` });
    expect(miss.status).toBe(200);
    expect(miss.body.length).toBe(audio.length);
  });

  it('answers HEAD with headers and no body', async () => {
    const res = await request('HEAD', `/media/${id}.wav`);
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe(String(audio.length));
    expect(res.headers.etag).toBe(`"${id}"`);
    expect(res.body.length).toBe(0);
  });

  it('answers 404 for an unknown id and for anything that is not an id', async () => {
    const paths = [
      `/media/${'0'.repeat(32)}.wav`,
      `/media/${id.toUpperCase()}.wav`,
      `/media/${id}.WAV`,
      `/media/${id}`,
      `/media/${id}.wav/`,
      `/media/${id}.wav%00`,
      `/media/../secret.wav`,
      `/media/..%2fsecret.wav`,
      `/media/%2e%2e/secret.wav`,
      `/media/%2e%2e%2fsecret.wav`,
      `/media/..%5csecret.wav`,
      `/media/../../../../etc/passwd`,
      `/media/..%2f..%2f..%2f..%2fetc%2fpasswd`,
      `/media/%2e%2e/%2e%2e/%2e%2e/etc/passwd`,
      `/media/`,
    ];
    for (const p of paths) {
      const res = await request('GET', p);
      expect(res.status, p).toBe(404);
      expect(res.body.toString()).not.toContain('secret');
    }
  });

  it('answers 405 to other methods', async () => {
    const res = await request('POST', `/media/${id}.wav`);
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET, HEAD');
  });

  it('leaves other URLs to the caller', async () => {
    for (const p of ['/', '/health', '/mediafoo.wav', `/media`]) {
      expect((await request('GET', p)).status, p).toBe(418);
    }
  });

  it('builds the playback URI Asterisk fetches', () => {
    expect(mediaUri('http://10.0.0.5:8080/media', id)).toBe(`sound:http://10.0.0.5:8080/media/${id}.wav`);
    expect(mediaUri('http://10.0.0.5:8080/media/', id)).toBe(`sound:http://10.0.0.5:8080/media/${id}.wav`);
    expect(() => mediaUri('http://h/media', '../x')).toThrow(TypeError);
  });
});
