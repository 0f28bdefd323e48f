import { describe, expect, it } from 'vitest';
import { rootSchema } from '../../src/app/config-schema.js';
import { ConfigError, parseConfigText } from '../../src/config/load.js';
import { LinearRegex } from '../../src/config/regex.js';
import { conditionHolds } from '../../src/hooks/attempt.js';
import { extract } from '../../src/hooks/extract.js';
import { classify } from '../../src/http/failure.js';

/**
 * Patterns from the config run on text callers and outside APIs control. The two from the issue
 * took 5.7 s (a condition on {callerName}) and 155 ms doubling every two characters (an error
 * pattern on a provider's answer) on RegExp; here they must stay far below a visible stall.
 * The bound (50 ms on 1,000 characters) is orders of magnitude under what backtracking takes on
 * the same input (years), so a loaded machine cannot make it flaky.
 */

const ENV = { ARI_USER: 'u', ARI_PASSWORD: 'p' };
const HEAD = `asterisk:
  ari: { user: "\${ARI_USER}", password: "\${ARI_PASSWORD}" }
`;

function parse(text: string) {
  return parseConfigText(text, 'cfg.yaml', rootSchema, ENV);
}

function issuesOf(text: string) {
  try {
    parse(text);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  throw new Error('config was accepted');
}

function ms(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const HOSTILE = 'a'.repeat(1000) + '!';
// Tried first: on a backtracking engine it takes a second or so (not years), so a regression
// fails here instead of hanging the run on the 1,000-character input.
const SHORT = 'a'.repeat(26) + '!';
const SHORT_ANSWER = 'a'.repeat(26) + '!';

describe('config regular expressions run in linear time', () => {
  it('a hook condition /^(\\w+\\s?)+$/ on a 1,000-character caller name', () => {
    const { value } = parse(`${HEAD}hooks:
  - on: call.start
    when: { value: "{callerName}", match: "/^(\\\\w+\\\\s?)+$/" }
    request: { url: "http://127.0.0.1:9/x" }
`);
    const hook = value.hooks[0]!;
    conditionHolds(hook, { callerName: 'warm up' }); // the first run compiles the automaton
    let r: { ok: boolean } = { ok: true };
    expect(ms(() => conditionHolds(hook, { callerName: SHORT }))).toBeLessThan(50);
    const took = ms(() => (r = conditionHolds(hook, { callerName: HOSTILE })));
    expect(r.ok).toBe(false);
    expect(took).toBeLessThan(50);
    expect(conditionHolds(hook, { callerName: 'Taro Yamada' }).ok).toBe(true);
  });

  it('an error pattern /(a+)+$/ on a 1,000-character answer', () => {
    const { value } = parse(`${HEAD}hooks:
  - on: call.start
    request: { url: "http://127.0.0.1:9/x" }
    error: { match: "/(a+)+$/" }
`);
    const rules = value.hooks[0]!.rules;
    classify({ kind: 'response', status: 200, body: 'warm up!' }, rules);
    let outcome = '';
    expect(ms(() => classify({ kind: 'response', status: 200, body: SHORT_ANSWER }, rules))).toBeLessThan(50);
    const took = ms(() => (outcome = classify({ kind: 'response', status: 200, body: HOSTILE }, rules).outcome));
    expect(outcome).toBe('ok');
    expect(took).toBeLessThan(50);
    expect(classify({ kind: 'response', status: 200, body: 'baaa' }, rules).outcome).toBe('retry');
  });

  it('an extraction and a dial allow-list on hostile text', () => {
    const re = LinearRegex.parse('/^(\\d+)+x/');
    re.exec('1');
    expect(ms(() => re.exec('1'.repeat(26) + '!'))).toBeLessThan(50);
    expect(ms(() => expect(extract([{ name: 'n', from: { kind: 'regex', source: '', re } }], '1'.repeat(1000) + '!').notFound).toEqual(['n']))).toBeLessThan(50);
    const allow = LinearRegex.parse('/^(\\+?[0-9]+)+$/');
    allow.test('1');
    expect(ms(() => allow.test('9'.repeat(26) + 'x'))).toBeLessThan(50);
    expect(ms(() => expect(allow.test('9'.repeat(1000) + 'x')).toBe(false))).toBeLessThan(50);
  });

  it('keeps what admins write: flags, named and numbered groups, the seed patterns', () => {
    expect(LinearRegex.parse('/SUPPORT/i').test('support')).toBe(true);
    expect(LinearRegex.parse('/^b$/m').test('a\nb')).toBe(true);
    expect(LinearRegex.parse('/a.b/s').test('a\nb')).toBe(true);
    expect(LinearRegex.parse('/a.b/').test('a\nb')).toBe(false);
    expect(LinearRegex.parse('/300/').test('{"responseCode":300}')).toBe(true);
    expect(LinearRegex.parse('^support$').test('support')).toBe(true);
    const m = LinearRegex.parse('/ticket=(?<ticket>\\d+)/').exec('ok ticket=42;');
    expect(m?.groups?.ticket).toBe('42');
    expect(m?.[1]).toBe('42');
    expect(String(LinearRegex.parse('/300/'))).toBe('/300/');
  });

  it('refuses at load, with file:line:col, what the linear engine cannot run', () => {
    const cases: Array<[string, RegExp]> = [
      ['/(a)\\\\1/', /backreference \(\\1\)/],
      ['/(?<x>a)\\\\k<x>/', /named backreference/],
      ['/a(?=b)/', /lookahead \(\?=/],
      ['/a(?!b)/', /lookahead \(\?!/],
      ['/(?<=a)b/', /lookbehind \(\?<=/],
      ['/(?<!a)b/', /lookbehind \(\?<!/],
      ['/a/y', /flag "y" is not supported/],
      ['/(300/', /invalid regular expression/],
    ];
    for (const [pattern, why] of cases) {
      const issues = issuesOf(`${HEAD}hooks:
  - on: call.start
    request: { url: "http://127.0.0.1:9/x" }
    error: { match: "${pattern}" }
`);
      expect(issues, pattern).toHaveLength(1);
      expect(issues[0]).toMatchObject({ file: 'cfg.yaml', line: 6, field: 'hooks[0].error.match' });
      expect(issues[0]!.column).toBeGreaterThan(0);
      expect(issues[0]!.message, pattern).toMatch(why);
    }
    // a class is not a group: [(?=] is three characters
    expect(LinearRegex.parse('/[(?=]/').test('=')).toBe(true);
  });

  it('refuses an extraction the engine cannot run, at its place', () => {
    const issues = issuesOf(`${HEAD}hooks:
  - on: call.start
    request: { url: "http://127.0.0.1:9/x" }
    extract: { ticket: "/(?<=id=)\\\\d+/" }
`);
    expect(issues[0]).toMatchObject({ line: 6, field: 'hooks[0].extract.ticket' });
    expect(issues[0]!.message).toMatch(/lookbehind/);
  });
});
