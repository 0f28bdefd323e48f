import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText } from '../../src/config/load.js';
import { rootSchema } from '../../src/app/config-schema.js';
import { hooksFor } from '../../src/hooks/config.js';

const ENV = { ARI_USER: 'u', ARI_PASSWORD: 'p', AOS_TOKEN: 'tok-123456', AOS_CLIENT_ID: '1234', AOS_SMS_CODE: '56789' };
const HEAD = `asterisk:
  ari: { user: "\${ARI_USER}", password: "\${ARI_PASSWORD}" }
`;

/** The sketch's hook, as the seed's settings table fills it in. */
const SEED = `${HEAD}hooks:
  - on: queue.key-exit
    numbers: ["+81501234567"]
    order: 1
    when: { value: "{queue}", match: "/^support$/" }
    request:
      url: https://qpd-api.aossms.com/p1/api/mt.json
      method: POST
      headers: { Content-Type: application/x-www-form-urlencoded }
      body: "token=\${AOS_TOKEN}&clientId=\${AOS_CLIENT_ID}&smsCode=\${AOS_SMS_CODE}&message=Thanks&phoneNumber={TEL}"
      timeout: 10
    extract: { ticket: "/ticket=(\\\\d+)/" }
    error: { match: "/300/" }
    retry: { count: 2, interval: 5s }
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

describe('hooks config', () => {
  it('reads the seed example: form encoding from its Content-Type, seconds as a bare number, /300/, 2 retries every 5 s', () => {
    const { value, secrets } = parse(SEED);
    expect(value.hooks).toHaveLength(1);
    const h = value.hooks[0]!;
    expect(h).toMatchObject({
      name: 'queue.key-exit-1',
      on: 'queue.key-exit',
      numbers: ['+81501234567'],
      order: 1,
      retry: { count: 2, intervalMs: 5000 },
    });
    expect(h.request.encoding).toBe('form');
    expect(h.request.timeout).toBe(10_000);
    expect(h.rules.errorMatch?.test('{"responseCode":300}')).toBe(true);
    expect(h.rules.retryOnTimeout).toBe(true);
    expect(h.when?.match.test('support')).toBe(true);
    expect(h.extract.map((e) => e.name)).toEqual(['ticket']);
    // the token came from the environment under a secret-looking name: logs and the hook log scrub it
    expect(secrets).toContain('tok-123456');
  });

  it('orders hooks by `order`, then by their place in the file', () => {
    const { value } = parse(`${HEAD}hooks:
  - { name: c, on: call.end, order: 3, request: { url: "http://x.test/c" } }
  - { name: a, on: call.end, order: 1, request: { url: "http://x.test/a" } }
  - { name: start, on: call.start, request: { url: "http://x.test/s" } }
  - { name: b, on: call.end, order: 1, request: { url: "http://x.test/b" } }
`);
    expect(hooksFor(value.hooks, 'call.end').map((h) => h.name)).toEqual(['a', 'b', 'c']);
  });

  it('expands status classes and reads error.timeout', () => {
    const { value } = parse(`${HEAD}hooks:
  - { on: call.end, request: { url: "http://x.test/" }, error: { status: ["4xx", 302], timeout: false } }
`);
    const rules = value.hooks[0]!.rules;
    expect(rules.errorStatus).toContain(400);
    expect(rules.errorStatus).toContain(499);
    expect(rules.errorStatus).toContain(302);
    expect(rules.errorStatus).not.toContain(500);
    expect(rules.retryOnTimeout).toBe(false);
  });

  it('infers JSON and XML escaping from the Content-Type header; GET defaults to the query string', () => {
    const { value } = parse(`${HEAD}hooks:
  - { on: call.end, request: { url: "http://x.test/", headers: { Content-Type: application/json }, body: '{"n":"{caller}"}' } }
  - { on: call.end, request: { url: "http://x.test/", headers: { Content-Type: text/xml }, body: "<n>{caller}</n>" } }
  - { on: call.end, request: { url: "http://x.test/", method: GET, body: { n: "{caller}" } } }
`);
    expect(value.hooks.map((h) => h.request.encoding)).toEqual(['json', 'xml', 'query']);
  });

  it('refuses a merge field the event does not have, naming the ones it has, at the hook\'s line', () => {
    const text = `${HEAD}hooks:
  - on: call.start
    request: { url: "http://x.test/?q={queue}" }
`;
    const issues = issuesOf(text);
    expect(issues).toHaveLength(1);
    expect(issues[0]!.field).toBe('hooks[0].request');
    expect(issues[0]!.message).toMatch(/unknown merge field \{queue\} for a call.start hook \(known: .*TEL.*caller/);
    expect(issues[0]!.line).toBe(5);
  });

  it('lets a later hook use what another extracts', () => {
    const { value } = parse(`${HEAD}hooks:
  - { name: lookup, on: call.end, request: { url: "http://x.test/" }, extract: { crmId: "$.id" } }
  - { name: log, on: call.end, request: { url: "http://x.test/{crmId}" } }
`);
    expect(value.hooks).toHaveLength(2);
  });

  it('refuses bad patterns and paths', () => {
    const issues = issuesOf(`${HEAD}hooks:
  - { name: a, on: call.end, request: { url: "http://x.test/" }, extract: { x: "/(/", y: "$.a[", z: "ticket" } }
`);
    const text = issues.map((i) => `${i.field}: ${i.message}`).join('\n');
    expect(text).toMatch(/hooks\[0\]\.extract\.x: invalid regular expression/);
    expect(text).toMatch(/hooks\[0\]\.extract\.y: JSON path/);
    expect(text).toMatch(/hooks\[0\]\.extract\.z: "ticket" is neither/);
  });

  it('refuses extracting into one of the call\'s own fields, and duplicate names', () => {
    const issues = issuesOf(`${HEAD}hooks:
  - { name: a, on: call.end, request: { url: "http://x.test/" }, extract: { caller: "/(\\\\d+)/" } }
  - { name: a, on: call.end, request: { url: "http://x.test/" } }
`);
    expect(issues.map((i) => `${i.field}: ${i.message}`)).toEqual([
      'hooks[0].extract.caller: "caller" is one of the call\'s own fields; choose another name',
      'hooks[1].name: hook name "a" is also used by hooks[0]',
    ]);
  });

  it('a hook step must name an inline hook', () => {
    const issues = issuesOf(`${HEAD}hooks:
  - { name: lookup, on: inline, request: { url: "http://x.test/" } }
  - { name: ended, on: call.end, request: { url: "http://x.test/" } }
stages:
  welcome:
    - hook: lookup
    - hook: ended
    - hook: { name: nope }
`);
    expect(issues.map((i) => `${i.field}: ${i.message}`)).toEqual([
      'stages.welcome[1].hook: hook "ended" runs on call.end; a hook step needs a hook with on: inline',
      'stages.welcome[2].hook: unknown hook "nope" (inline hooks: lookup)',
    ]);
  });

  it('refuses an unknown event and an unknown key', () => {
    const issues = issuesOf(`${HEAD}hooks:
  - { on: call.ring, request: { url: "http://x.test/" } }
  - { on: call.end, request: { url: "http://x.test/" }, retries: 2 }
`);
    expect(issues.map((i) => `${i.field}: ${i.message}`)).toEqual([expect.stringMatching(/^hooks\[0\]\.on: /), 'hooks[1]: unknown field "retries"']);
    expect(issues[1]!.line).toBe(5);
  });
});
