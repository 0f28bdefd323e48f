import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { rootSchema } from '../../src/app/config-schema.js';
import { ConfigError, parseConfigText, type ConfigIssue } from '../../src/config/load.js';
import { REPO_ROOT } from '../helpers/asterisk.js';

const run = promisify(execFile);
const CLI = join(REPO_ROOT, 'dist/cli.js');
const ENV = { ARI_USER: 'u', ARI_PASSWORD: 'p' };
const HEAD = `asterisk:
  ari: { user: "\${ARI_USER}", password: "\${ARI_PASSWORD}" }
`;

function issuesOf(text: string): ConfigIssue[] {
  try {
    parseConfigText(text, 'cfg.yaml', rootSchema, ENV);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  return [];
}

const HOOK = (inner: string) => `${HEAD}hooks:\n  - on: call.start\n    request: { url: "http://127.0.0.1:9/x"${inner} }\n`;
const PROVIDER = (extra: string) =>
  `${HEAD}sms:\n  providers:\n    p: { kind: http, url: "http://127.0.0.1:9/x", body: { to: "{to}", m: "{message}" }${extra} }\n`;

/** One line per duration field: the file with VALUE in it, the field's path, its bound. */
const DURATIONS: Array<[string, string, string, string]> = [
  // [name, file with VALUE, field, the longest accepted]
  ['ari.timeout', `asterisk:\n  ari: { user: u, password: p, timeout: VALUE }\n`, 'asterisk.ari.timeout', '10m'],
  ['ami.timeout', `${HEAD}  ami: { user: u, secret: s, timeout: VALUE }\n`, 'asterisk.ami.timeout', '10m'],
  ['tts.timeout', `${HEAD}tts: { timeout: VALUE }\n`, 'tts.timeout', '10m'],
  ['hook request.timeout', HOOK(', timeout: VALUE'), 'hooks[0].request.timeout', '10m'],
  ['hook retry.interval', `${HOOK('')}    retry: { count: 1, interval: VALUE }\n`, 'hooks[0].retry.interval', '10m'],
  ['provider timeout', PROVIDER(', timeout: VALUE'), 'sms.providers.p.timeout', '10m'],
  ['provider retry.interval', PROVIDER(', retry: { count: 1, interval: VALUE }'), 'sms.providers.p.retry.interval', '10m'],
  ['provider retry.maxInterval', PROVIDER(', retry: { count: 1, maxInterval: VALUE }'), 'sms.providers.p.retry.maxInterval', '1d'],
  ['sms window', `${HEAD}sms:\n  limits: { perRecipient: { max: 3, window: VALUE } }\n`, 'sms.limits.perRecipient.window', '31d'],
  ['route filler', `${HEAD}routing:\n  integrations:\n    api: { url: "http://127.0.0.1:9/r", timeout: VALUE }\n`, 'routing.integrations.api.timeout', '10m'],
  ['menu timeout', `${HEAD}routing:\n  menus:\n    m: { prompt: hi, options: { "1": hangup }, timeout: VALUE }\n`, 'routing.menus.m.timeout', '10m'],
  ['dial timeout', `${HEAD}destinations:\n  dial: { dialString: "PJSIP/{number}@t", timeout: VALUE }\n`, 'destinations.dial.timeout', '10m'],
  ['sms delay', `${HEAD}sms:\n  providers: { p: { kind: http, url: "http://127.0.0.1:9/x", body: { to: "{to}", m: "{message}" } } }\nstages:\n  s:\n    - sms: { provider: p, to: [caller], text: hi, delay: VALUE }\n`, 'stages.s[0].sms.delay', '1d'],
  ['gather timeout', `${HEAD}stages:\n  s:\n    - gather: { prompt: hi, timeout: VALUE }\n`, 'stages.s[0].gather.timeout', '10m'],
];

function seconds(bound: string): number {
  const n = Number(bound.slice(0, -1));
  return bound.endsWith('d') ? n * 86400 : bound.endsWith('h') ? n * 3600 : bound.endsWith('m') ? n * 60 : n;
}

describe('every duration has an upper bound, enforced at load', () => {
  it.each(DURATIONS)('%s: the bound itself passes, one second more and the issue examples are refused at the field', (_name, file, field, max) => {
    const ok = issuesOf(file.replace('VALUE', max)).filter((i) => i.field === field);
    expect(ok).toEqual([]);
    for (const value of [`${seconds(max) + 1}`, '999999999h', '3000000']) {
      const issues = issuesOf(file.replace('VALUE', value)).filter((i) => i.field === field);
      expect(issues, `${field}: ${value}`).toHaveLength(1);
      expect(issues[0]!.line).toBeGreaterThan(0);
      expect(issues[0]!.message).toContain(`longer than the ${max} this field allows`);
    }
  });

  it('the text API keeps its own 30s', () => {
    const file = (t: string) =>
      `${HEAD}sms:\n  providers: { p: { kind: http, url: "http://127.0.0.1:9/x", body: { to: "{to}", m: "{message}" } } }\nstages:\n  s:\n    - sms: { description: d, provider: p, to: [caller], text: { fromApi: { url: "http://127.0.0.1:9/t", timeout: ${t} } } }\n`;
    expect(issuesOf(file('30s'))).toEqual([]);
    expect(issuesOf(file('31s'))[0]!.message).toMatch(/at most 30s/);
  });

  it('counts have bounds too', () => {
    expect(issuesOf(`${HEAD}sms:\n  limits: { perRecipient: { max: 1000001, window: 1h } }\n`)[0]).toMatchObject({ field: 'sms.limits.perRecipient.max' });
    expect(issuesOf(`${HEAD}sms:\n  limits: { dailyCapPerStep: 1000001 }\n`)[0]).toMatchObject({ field: 'sms.limits.dailyCapPerStep' });
    expect(issuesOf(`${HOOK('')}    order: 10000000\n`)[0]).toMatchObject({ field: 'hooks[0].order' });
    expect(issuesOf(`${HEAD}stages:\n  s:\n    - continue: { context: c, extension: e, priority: 1e12 }\n`)[0]).toMatchObject({ field: 'stages.s[0].continue.priority' });
    expect(issuesOf(`${HEAD}sms:\n  limits: { perRecipient: { max: 1000000, window: 1h }, dailyCapPerStep: 1000000 }\n`)).toEqual([]);
  });
});

describe('YAML and type errors name file, line and field with the right words', () => {
  it('an alias bomb is an error at the first alias, not a ReferenceError', () => {
    const rows = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 7; i++) rows.push(`${'abcdefg'[i]}: &${'abcdefg'[i]} [${Array(9).fill(`*${'abcdefg'[i - 1]}`).join(',')}]`);
    const issues = issuesOf(rows.join('\n') + '\n');
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ file: 'cfg.yaml', line: 2, column: 8, field: 'b[0]' });
    expect(issues[0]!.message).toMatch(/aliases .* expand to too many nodes/);
  });

  it('a few aliases for shared blocks still work', () => {
    const text = `${HEAD}hooks:\n  - on: call.start\n    request: &r { url: "http://127.0.0.1:9/x" }\n  - on: call.end\n    request: *r\n`;
    expect(issuesOf(text)).toEqual([]);
  });

  it('a duplicate key names the key', () => {
    const issues = issuesOf(`${HEAD}http: { port: 1 }\nhttp: { port: 2 }\n`);
    expect(issues).toEqual([expect.objectContaining({ line: 4, column: 1, field: 'http', message: expect.stringMatching(/appears twice/) })]);
    const inner = issuesOf(`${HEAD}tts:\n  language: en\n  language: ja\n`);
    expect(inner[0]).toMatchObject({ line: 5, field: 'tts.language' });
  });

  it('nesting deeper than 64 levels, in flow or block style, is refused at a place', () => {
    const flow = issuesOf(`a: ${'['.repeat(5000)}${']'.repeat(5000)}\n`);
    expect(flow).toHaveLength(1);
    expect(flow[0]!.message).toBe('nested deeper than 64 levels');
    expect(flow[0]!.line).toBe(1);
    const block = issuesOf(`${HEAD}x:${Array.from({ length: 80 }, (_, i) => `\n${'  '.repeat(i + 1)}k:`).join('')} 1\n`);
    expect(block).toHaveLength(1);
    expect(block[0]!.message).toBe('nested deeper than 64 levels');
    expect(block[0]!.field.startsWith('x.k.k.k')).toBe(true);
  });

  it('wrong types say what was expected and what was written', () => {
    const issues = issuesOf(`${HEAD}  ami: { user: a, secret: b, port: "eighty", host: 5 }\nhttp: { port: 1e309 }\ntts: { timeout: true, engines: [] }\n`);
    const by = Object.fromEntries(issues.map((i) => [i.field, i.message]));
    expect(by['asterisk.ami.port']).toBe('expected a number, got a string ("eighty")');
    expect(by['asterisk.ami.host']).toBe('expected a string, got a number (5)');
    expect(by['http.port']).toBe('expected a number, got a number out of range (Infinity)');
    expect(by['tts.timeout']).toBe('expected a number or a string, got a boolean (true)');
    expect(by['tts.engines']).toBe('expected a map, got a list');
    for (const i of issues) expect(i.message).not.toMatch(/required field is missing/);
  });
});

describe('call-actions validate', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ca-limits-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['alias bomb', `a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n`, /cfg\.yaml:2:8: b\[0\]: YAML aliases/],
    ['too deep', `a: ${'{b: '.repeat(3000)}1${'}'.repeat(3000)}\n`, /cfg\.yaml:1:\d+: a(\.b)+…?: nested deeper than 64 levels/],
    ['overflowing timer', `asterisk:\n  ari: { user: u, password: p, timeout: 999999999h }\n`, /cfg\.yaml:2:\d+: asterisk\.ari\.timeout: "999999999h" is longer than the 10m/],
  ])('%s: exit 2, one line with the place, no stack trace', async (_name, text, line) => {
    const file = join(dir, 'cfg.yaml');
    writeFileSync(file, text);
    const r = await run(process.execPath, [CLI, 'validate', file], { cwd: dir }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
    expect(r.code).toBe(2);
    expect(r.stderr.replaceAll(dir + '/', '')).toMatch(line);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
