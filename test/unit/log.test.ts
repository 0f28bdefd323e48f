import { Writable } from 'node:stream';
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { createLogger, maskNumber } from '../../src/log.js';

function capture(secrets?: string[]) {
  const lines: Array<Record<string, any>> = [];
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n').filter(Boolean)) {
        raw.push(l);
        lines.push(JSON.parse(l));
      }
      cb();
    },
  });
  return { log: createLogger({ destination, secrets }), lines, raw };
}

describe('logger', () => {
  it('censors secret keys at any of the first four levels, in arrays too, and leaves the logged object alone', () => {
    const { log, lines } = capture();
    const logged = { request: { headers: { Authorization: 'Basic abc' }, body: 'x' }, list: [{ token: 't1' }, 'plain'], password: 'p', deep: { a: { b: { c: { secret: 'too deep' } } } } };
    log.info(logged, 'sent');
    expect(lines[0]).toMatchObject({ request: { headers: { Authorization: '[redacted]' }, body: 'x' }, list: [{ token: '[redacted]' }, 'plain'], password: '[redacted]', msg: 'sent' });
    // four levels are searched; a secret key deeper than that is not (a known limit, documented here)
    expect(lines[0]!.deep.a.b.c.secret).toBe('too deep');
    expect(logged.request.headers.Authorization).toBe('Basic abc');
    expect(logged.list[0]).toEqual({ token: 't1' });
  });

  it('censors secret keys in child bindings (top level)', () => {
    const { log, lines } = capture();
    log.child({ apiKey: 'k-123', callId: 'c1' }).info('hello');
    expect(lines[0]).toMatchObject({ apiKey: '[redacted]', callId: 'c1' });
  });

  it('scrubs known secret values wherever they land: message, nested values, error messages, JSON-escaped forms', () => {
    const secret = 's3cr"et\\value';
    const { log, raw } = capture([secret, 'abcd-token-1234']);
    log.info({ body: `the provider echoed abcd-token-1234 back`, nested: { x: [`${secret}`] } }, 'answer had %s', 'abcd-token-1234');
    log.error({ err: new Error(`bad token abcd-token-1234`) }, 'failed');
    const text = raw.join('\n');
    expect(text).not.toContain('abcd-token-1234');
    expect(text).not.toContain(JSON.stringify(secret).slice(1, -1));
    // body, nested value, message, the error message and its stack
    expect(text.match(/\[redacted\]/g)!.length).toBe(5);
    // still one JSON object per line
    expect(raw).toHaveLength(2);
  });

  it('writes batched stdout lines on its own while the process runs, and every line by exit', async () => {
    // dist/: the build npm test makes first (a child process cannot load the TypeScript source)
    const script = `
      const { createLogger } = await import(${JSON.stringify(new URL('../../dist/log.js', import.meta.url).href)});
      const log = createLogger();
      for (let i = 0; i < 3; i++) log.info({ i }, 'line');
      setTimeout(() => { for (let i = 3; i < 500; i++) log.info({ i }, 'line'); }, 2000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let firstSeen: number | undefined;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (firstSeen === undefined && out.includes('\n')) firstSeen = out.split('\n').filter(Boolean).length;
    });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, err).toBe(0);
    // the first three lines came out during the 2 s pause, not with the rest at exit
    expect(firstSeen).toBe(3);
    expect(out.split('\n').filter(Boolean).map((l) => JSON.parse(l).i as number)).toEqual([...Array(500).keys()]);
  });
});

describe('maskNumber', () => {
  it('keeps the head and the last two digits at info, everything at debug', () => {
    expect(maskNumber('+819012345678', 'info')).toBe('+8190******78');
    expect(maskNumber('+819012345678', 'debug')).toBe('+819012345678');
    expect(maskNumber('12345', 'info')).toBe('*****');
  });
});
