import fc from 'fast-check';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { rootSchema } from '../../src/app/config-schema.js';
import { ConfigError, parseConfigText } from '../../src/config/load.js';
import { REPO_ROOT } from '../helpers/asterisk.js';

/**
 * Fuzzing the config loader: generated YAML, from byte-level damage of a real config to
 * well-formed YAML with wrong types in real fields, aliases, duplicate keys and deep nesting.
 * Whatever the file, loading either succeeds or fails with a ConfigError whose every issue names
 * the file, a line and a column (never another exception, never a stack trace); the CLI exits 2.
 */

const ENV = { ARI_USER: 'u', ARI_PASSWORD: 'p', AMI_USER: 'u', AMI_SECRET: 's', AOS_TOKEN: 'tok-123456', AOS_CLIENT_ID: '1', AOS_SMS_CODE: '2' };
const BASE = readFileSync(join(REPO_ROOT, 'examples/config.yaml'), 'utf8');
const BASE_LINES = BASE.split('\n');

type Outcome = { ok: true } | { ok: false; lines: string[] };

function load(text: string): Outcome {
  try {
    parseConfigText(text, 'fz.yaml', rootSchema, ENV);
    return { ok: true };
  } catch (e) {
    // anything but a ConfigError fails the property, with the generated file as its counterexample
    if (!(e instanceof ConfigError)) throw new Error(`not a ConfigError: ${(e as Error)?.stack ?? String(e)}`);
    expect(e.issues.length).toBeGreaterThan(0);
    for (const i of e.issues) {
      expect(i.file).toBe('fz.yaml');
      expect(i.line).toBeGreaterThanOrEqual(1);
      expect(i.column).toBeGreaterThanOrEqual(1);
      expect(i.message.trim()).not.toBe('');
      expect(i.message).not.toMatch(/\n\s+at /);
    }
    return { ok: false, lines: e.message.split('\n') };
  }
}

const SNIPPETS = [
  '&a', '*a', '*nope', '<<: *a', '[', ']', '{', '}', ':', ': ', '- ', '? ', '#', '|', '>', '!!int', '!!binary', '!tag', '---', '...',
  '%YAML 1.2', '"', "'", '\t', '\n', '  ', '${ARI_USER}', '${MISSING}', '${X:-5}', 'null', '~', 'true', '1e309', '-1', '0x1F', '.inf',
  '999999999h', '3000000', '山田', '😀', '\u0000', '\uFEFF', '\r\n', '/(a+)+$/', '/(a)\\1/', 'timeout: ', 'port: ',
];

/** Byte-level damage: insert, delete, duplicate or swap lines and fragments of a real config. */
const damaged = fc
  .array(
    fc.oneof(
      fc.record({ op: fc.constant('insert' as const), at: fc.nat(), what: fc.oneof(fc.constantFrom(...SNIPPETS), fc.string({ unit: 'binary', maxLength: 8 })) }),
      fc.record({ op: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 20 }) }),
      fc.record({ op: fc.constant('dupLine' as const), at: fc.nat() }),
      fc.record({ op: fc.constant('indent' as const), at: fc.nat(), by: fc.integer({ min: -4, max: 4 }) }),
    ),
    { minLength: 1, maxLength: 6 },
  )
  .map((ops) => {
    let text = BASE;
    for (const o of ops) {
      if (o.op === 'insert') {
        const at = o.at % (text.length + 1);
        text = text.slice(0, at) + o.what + text.slice(at);
      } else if (o.op === 'delete') {
        const at = o.at % (text.length + 1);
        text = text.slice(0, at) + text.slice(at + o.len);
      } else {
        const lines = text.split('\n');
        const i = o.at % lines.length;
        if (o.op === 'dupLine') lines.splice(i, 0, lines[i]!);
        else lines[i] = o.by >= 0 ? ' '.repeat(o.by) + lines[i] : lines[i]!.slice(-o.by);
        text = lines.join('\n');
      }
    }
    return text;
  });

/** Real fields, any value: wrong types, huge numbers, odd strings, lists and maps where scalars go. */
const FIELDS = [
  ['asterisk', 'ari', 'timeout'], ['asterisk', 'ami', 'port'], ['asterisk', 'ami', 'host'], ['http', 'port'], ['http', 'host'], ['tts', 'maxChars'],
  ['tts', 'timeout'], ['log', 'level'], ['store'], ['sms', 'providers', 'aossms', 'timeout'], ['sms', 'providers', 'aossms', 'retry'],
  ['sms', 'providers', 'aossms', 'error', 'match'], ['sms', 'providers', 'aossms', 'headers'], ['sms', 'limits'], ['stages', 'queue-exit'],
  ['stages', 'queue-exit', 0], ['stages', 'queue-exit', 0, 'sms', 'delay'], ['hooks'], ['routing'], ['destinations'], ['salesforce'], ['nope'],
] as const;
const anyValue = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(Infinity, -Infinity, Number.NaN, 1e309, -0, 2 ** 53 + 1, '999999999h', '3000000', '/(a+)+$/', '/a(?=b)/', '${ARI_USER}'),
);
const wrongTyped = fc.array(fc.tuple(fc.constantFrom(...FIELDS), anyValue), { minLength: 1, maxLength: 4 }).map((edits) => {
  const doc = JSON.parse(JSON.stringify(parseBase())) as Record<string, unknown>;
  for (const [path, value] of edits) setIn(doc, path, value);
  return stringify(doc);
});

/** Structures that attack the parser: aliases, duplicate keys, deep nesting, many documents. */
const structural = fc.oneof(
  fc.integer({ min: 2, max: 12 }).map((fan) => {
    const rows = [`a0: &a0 [${Array(fan).fill('x').join(',')}]`];
    for (let i = 1; i < 8; i++) rows.push(`a${i}: &a${i} [${Array(fan).fill(`*a${i - 1}`).join(',')}]`);
    return `${BASE}\n${rows.join('\n')}\n`;
  }),
  fc.integer({ min: 1, max: 3000 }).map((depth) => `${BASE}\nx: ${'['.repeat(depth)}1${']'.repeat(depth)}\n`),
  fc.integer({ min: 1, max: 200 }).map((depth) => `${BASE}\nx:${Array.from({ length: depth }, (_, i) => `\n${'  '.repeat(i + 1)}k:`).join('')} 1\n`),
  fc.constantFrom(...BASE_LINES.filter((l) => /^[a-z]/.test(l) && l.includes(':'))).map((line) => `${BASE}\n${line}\n`),
  fc.nat({ max: 5 }).map((n) => `${BASE}${'\n---\na: 1'.repeat(n + 1)}\n`),
);

let base: unknown;
function parseBase(): unknown {
  base ??= (() => {
    let captured: unknown;
    parseConfigText(BASE, 'base.yaml', { safeParse: (v: unknown) => ((captured = v), { success: true, data: v }) } as never, ENV);
    return captured;
  })();
  return base;
}

function setIn(root: Record<string, unknown>, path: readonly (string | number)[], value: unknown): void {
  let cur: Record<string | number, unknown> = root;
  for (const key of path.slice(0, -1)) {
    if (cur[key] === null || typeof cur[key] !== 'object') cur[key] = typeof key === 'number' ? [] : {};
    cur = cur[key] as Record<string | number, unknown>;
  }
  cur[path[path.length - 1]!] = value;
}

describe('fuzz: the config loader', () => {
  const stats = { ok: 0, refused: 0 };
  const count = (o: Outcome) => (o.ok ? stats.ok++ : stats.refused++);

  it('damaged copies of a real config (1,200 cases)', () => {
    fc.assert(fc.property(damaged, (text) => void count(load(text))), { numRuns: 1200 });
  }, 120_000);

  it('real fields with values of any type (800 cases)', () => {
    fc.assert(fc.property(wrongTyped, (text) => void count(load(text))), { numRuns: 800 });
  }, 120_000);

  it('aliases, duplicate keys, deep nesting, several documents (300 cases)', () => {
    fc.assert(
      fc.property(structural, (text) => {
        const o = load(text);
        count(o);
        // none of these is a config the service may start with
        expect(o.ok).toBe(false);
      }),
      { numRuns: 300 },
    );
    // the run is a real fuzz: most cases are refused, and what is refused has a place
    expect(stats.refused).toBeGreaterThan(1000);
  }, 120_000);
});

describe('fuzz: call-actions validate on generated files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ca-fuzz-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('exits 2 with file:line:col on every line, never a stack trace', async () => {
    const run = promisify(execFile);
    const samples = [...fc.sample(structural, { numRuns: 4, seed: 7 }), ...fc.sample(wrongTyped, { numRuns: 30, seed: 11 })]
      .filter((t) => !load(t).ok)
      .slice(0, 8);
    expect(samples.length).toBeGreaterThanOrEqual(6);
    for (const [i, text] of samples.entries()) {
      const file = join(dir, `f${i}.yaml`);
      writeFileSync(file, text);
      const r = await run(process.execPath, [join(REPO_ROOT, 'dist/cli.js'), 'validate', file], { env: { ...process.env, ...ENV } }).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
      );
      expect(r.code, text).toBe(2);
      const lines = r.stderr.trimEnd().split('\n');
      for (const line of lines) expect(line.startsWith(`${file}:`) && /^:\d+:\d+: /.test(line.slice(file.length)), line).toBe(true);
    }
  }, 60_000);
});
