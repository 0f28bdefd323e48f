import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText } from '../../src/config/load.js';
import { rootSchema } from '../../src/app/config-schema.js';
import { REPO_ROOT } from '../helpers/asterisk.js';

const run = promisify(execFile);
const CLI = join(REPO_ROOT, 'dist/cli.js');
const ENV = { ARI_USER: 'u', ARI_PASSWORD: 'p', AOS_TOKEN: 'secret-token-123' };

const GOOD = `asterisk:
  ari: { user: "\${ARI_USER}", password: "\${ARI_PASSWORD}" }
sms:
  providers:
    aossms:
      kind: http
      url: http://127.0.0.1:9/p1/api/mt.json
      body: { token: "\${AOS_TOKEN}", message: "{message}", phoneNumber: "{to}" }
      error: { match: "/300/" }
      retry: { count: 2, interval: 5s }
  templates:
    callback: "Book a call-back: https://example.com/cb?q={queue}"
stages:
  queue-exit:
    - sms: { description: "Queue # SMS", provider: aossms, to: [caller, "+48221131415"], template: callback, oncePerCall: true }
    - say: "We have sent you a text message."
    - hangup: {}
`;

function parse(text: string, env: Record<string, string> = ENV) {
  return parseConfigText(text, 'cfg.yaml', rootSchema, env);
}

function issuesOf(text: string, env: Record<string, string> = ENV) {
  try {
    parse(text, env);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  throw new Error('config was accepted');
}

const lineOf = (text: string, needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

describe('config loading', () => {
  it('accepts the example and resolves durations, regexes, defaults and secrets', () => {
    const { value, secrets } = parse(GOOD);
    expect(value.asterisk.ari.app).toBe('call-actions');
    const aossms = value.sms.providers.aossms!;
    if (aossms.kind !== 'http') throw new Error('aossms is an http provider');
    expect(aossms.retry).toEqual({ count: 2, interval: 5000, backoff: 1 });
    expect(aossms.error!.match!.test('{"responseCode":300}')).toBe(true);
    expect(value.stages['queue-exit']!.map((s) => (s as { kind: string }).kind)).toEqual(['sms', 'say', 'hangup']);
    expect((value.stages['queue-exit']![0] as { where: string }).where).toBe('stages.queue-exit[0].sms');
    expect(secrets).toContain('secret-token-123');
    expect(secrets).toContain('p');
  });

  it('the shipped example config is valid', () => {
    const text = readFileSync(join(REPO_ROOT, 'examples/config.yaml'), 'utf8');
    const env = { ARI_USER: 'u', ARI_PASSWORD: 'p', AMI_USER: 'u', AMI_SECRET: 's', AOS_TOKEN: 't', AOS_CLIENT_ID: 'c', AOS_SMS_CODE: 'x' };
    expect(() => parseConfigText(text, 'example.yaml', rootSchema, env)).not.toThrow();
  });

  const cases: Array<[string, string, string, string, RegExp]> = [
    ['an unknown step', '- hangup: {}', '- hangpu: {}', 'stages.queue-exit[2].hangpu', /unknown step "hangpu"/],
    ['an invalid regex', 'match: "/300/"', 'match: "/(300/"', 'sms.providers.aossms.error.match', /invalid regular expression/],
    ['a malformed phone number', '"+48221131415"', '"+4822"', 'sms.providers', /not a valid phone number/],
    ['an unknown provider', 'provider: aossms,', 'provider: aosms,', 'stages.queue-exit[0].sms.provider', /unknown provider "aosms" \(known: aossms\)/],
    ['a misspelt key', 'oncePerCall: true', 'oncePerCal: true', 'stages.queue-exit[0].sms', /unknown field "oncePerCal"/],
    ['a bad duration', 'interval: 5s', 'interval: 5 parsecs', 'sms.providers.aossms.retry.interval', /not a duration/],
  ];
  for (const [what, from, to, field, message] of cases) {
    it(`${what}: names file, line and field`, () => {
      const text = GOOD.replace(from, to);
      expect(text).not.toBe(GOOD);
      const issues = issuesOf(text);
      const hit = issues.find((i) => message.test(i.message));
      expect(hit, JSON.stringify(issues)).toBeDefined();
      expect(hit!.file).toBe('cfg.yaml');
      expect(hit!.line).toBe(lineOf(text, to));
      if (field !== 'sms.providers') expect(hit!.field).toBe(field);
      else expect(hit!.field).toMatch(/^stages\.queue-exit\[0\]\.sms\.to\[1\]$/);
    });
  }

  it('a missing environment variable names the variable, line and field', () => {
    const issues = issuesOf(GOOD, { ARI_USER: 'u', ARI_PASSWORD: 'p' });
    expect(issues).toEqual([
      { file: 'cfg.yaml', line: lineOf(GOOD, 'AOS_TOKEN'), column: expect.any(Number), field: 'sms.providers.aossms.body.token', message: 'environment variable AOS_TOKEN is not set' },
    ]);
  });

  it('a YAML syntax error names the line', () => {
    const issues = issuesOf('asterisk:\n  ari: { user: u\nstages: []\n');
    expect(issues[0]!.line).toBeGreaterThan(0);
  });

  it('the JSON Schema lists every step kind', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'schema']);
    const schema = JSON.parse(stdout) as { properties: { stages: unknown } };
    const text = JSON.stringify(schema.properties.stages);
    for (const kind of ['sms', 'say', 'hangup', 'continue']) expect(text).toContain(`"${kind}"`);
  });
});

describe('call-actions validate / start with a bad config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'call-actions-config-'));
  for (const [what, from, to, expected] of [
    ['unknown step', '- hangup: {}', '- hangpu: {}', /bad\.yaml:17:\d+: stages\.queue-exit\[2\]\.hangpu: unknown step "hangpu"/],
    ['invalid regex', 'match: "/300/"', 'match: "/(300/"', /bad\.yaml:9:\d+: sms\.providers\.aossms\.error\.match: invalid regular expression/],
    ['malformed phone number', '"+48221131415"', '"+4822"', /bad\.yaml:15:\d+: stages\.queue-exit\[0\]\.sms\.to\[1\]: "\+4822" is not a valid phone number/],
  ] as const) {
    for (const command of ['validate', 'start']) {
      it(`${command}: ${what} exits non-zero naming file, line and field`, async () => {
        const file = join(dir, 'bad.yaml');
        writeFileSync(file, GOOD.replace(from, to));
        const args = command === 'validate' ? [CLI, 'validate', file] : [CLI, 'start', '--config', file];
        const err = await run(process.execPath, args, { env: { ...process.env, ...ENV } }).then(
          () => undefined,
          (e: { code: number; stderr: string }) => e,
        );
        expect(err, 'the command succeeded').toBeDefined();
        expect(err!.code).toBe(2);
        expect(err!.stderr).toMatch(expected);
      });
    }
  }

  it('start: a missing environment variable exits non-zero and does not print the other secrets', async () => {
    const file = join(dir, 'noenv.yaml');
    writeFileSync(file, GOOD);
    const err = await run(process.execPath, [CLI, 'start', '--config', file], { env: { ...process.env, ARI_USER: 'u', ARI_PASSWORD: 'p' } }).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err!.code).toBe(2);
    expect(err!.stderr).toMatch(/noenv\.yaml:8:\d+: sms\.providers\.aossms\.body\.token: environment variable AOS_TOKEN is not set/);
  });

  it('validate: a good file passes', async () => {
    const file = join(dir, 'good.yaml');
    writeFileSync(file, GOOD);
    const { stdout } = await run(process.execPath, [CLI, 'validate', file], { env: { ...process.env, ...ENV } });
    expect(stdout).toMatch(/good\.yaml: ok \(1 stage: queue-exit\)/);
  });
});
