import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText } from '../../src/config/load.js';
import { rootSchema } from '../../src/app/config-schema.js';
import { REPO_ROOT } from '../helpers/asterisk.js';

/** The SMS element as an admin writes it (the config sketch's notify-agents stage). */
const NOTIFY = `asterisk:
  ari: { user: u, password: p }
sms:
  providers:
    twilio: { kind: twilio, accountSid: "\${TWILIO_SID}", authToken: "\${TWILIO_TOKEN}", from: "+15005550006" }
  limits:
    perRecipient: { max: 3, window: 1h }
    perPrefix: [{ prefix: "+882", max: 0, window: 24h }]
    allowCountries: [PL, DE]
    dailyCapPerStep: 500
stages:
  notify-agents:
    - sms:
        description: "VIP line reached"
        provider: twilio
        sender: ACME
        delay: 30s
        to: "+48221131415, +48 22 113 14 16"
        alsoToCaller: true
        oncePerCall: true
        text: { fromApi: { url: https://crm.example.com/sms-text, method: GET, timeout: 3s,
                           field: message, fields: { shop: "berlin-1" }, onError: { text: "Call from {caller}" } } }
    - continue: {}
`;
const ENV = { TWILIO_SID: 'AC' + '0123456789abcdef'.repeat(2), TWILIO_TOKEN: 'tok' };

const parse = (text: string) => parseConfigText(text, 'sms.yaml', rootSchema, ENV);
function issues(text: string) {
  try {
    parse(text);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  throw new Error('accepted');
}
const lineOf = (text: string, needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

describe('SMS element config', () => {
  it("accepts every option of TeleCube's element and resolves them", () => {
    const { value, secrets } = parse(NOTIFY);
    const step = value.stages['notify-agents']![0] as { config: Record<string, unknown> };
    expect(step.config).toMatchObject({
      description: 'VIP line reached',
      sender: 'ACME',
      delay: 30_000,
      to: ['+48221131415', '+48221131416'], // the comma-separated seed form, normalised to E.164
      alsoToCaller: true,
      oncePerCall: true,
      text: { fromApi: { method: 'GET', timeout: 3000, field: 'message', fields: { shop: 'berlin-1' }, onError: { text: 'Call from {caller}' } } },
    });
    expect(value.sms.providers.twilio).toMatchObject({ kind: 'twilio', baseUrl: 'https://api.twilio.com', from: '+15005550006' });
    expect(value.sms.limits).toEqual({
      perRecipient: { max: 3, window: 3_600_000 },
      perPrefix: [{ prefix: '+882', max: 0, window: 86_400_000 }],
      allowCountries: ['PL', 'DE'],
      dailyCapPerStep: 500,
    });
    expect(secrets).toContain('tok');
  });

  it('S4: an invalid number in the comma-separated list names the file, line and field', () => {
    const bad = NOTIFY.replace('+48 22 113 14 16', '+48 22 113');
    const hit = issues(bad).find((i) => /not a valid phone number/.test(i.message));
    expect(hit).toMatchObject({ file: 'sms.yaml', line: lineOf(bad, 'to: "+48221131415'), field: 'stages.notify-agents[0].sms.to[1]' });
    expect(hit!.message).toMatch(/"\+48 22 113" is not a valid phone number in E\.164 form/);
  });

  it('a number without + is refused, not guessed', () => {
    const hit = issues(NOTIFY.replace('+48221131415,', '221131415,')).find((i) => i.field === 'stages.notify-agents[0].sms.to[0]');
    expect(hit?.message).toMatch(/E\.164/);
  });

  // [what, from, to, field the issue names, its message, text on the line it must point at]
  const cases: Array<[string, string, string, string, RegExp, string]> = [
    ['a Twilio provider without a sender', ', from: "+15005550006" }', ' }', 'sms.providers.twilio', /from .* or messagingServiceSid/, 'twilio: { kind'],
    ['an unknown provider kind', 'kind: twilio,', 'kind: twillio,', 'sms.providers.twilio.kind', /./, 'kind: twillio'],
    ['an http field on a Twilio provider', 'from: "+15005550006" }', 'from: "+15005550006", url: "http://x" }', 'sms.providers.twilio', /unknown field "url"/, 'url: "http://x"'],
    ['a bad text API field path', 'field: message,', 'field: "data..text",', 'stages.notify-agents[0].sms.text.fromApi.field', /dotted path/, 'data..text'],
    ['an unknown onError', 'onError: { text: "Call from {caller}" }', 'onError: retry', 'stages.notify-agents[0].sms.text', /./, 'text: { fromApi'],
    ['a bad country', 'allowCountries: [PL, DE]', 'allowCountries: [PL, Germany]', 'sms.limits.allowCountries[1]', /ISO 3166/, 'Germany'],
    ['a bad prefix', 'prefix: "+882"', 'prefix: "882"', 'sms.limits.perPrefix[0].prefix', /\+ and digits/, 'prefix: "882"'],
  ];
  for (const [what, from, to, field, message, line] of cases) {
    it(`${what}: names the line and field`, () => {
      const text = NOTIFY.replace(from, to);
      expect(text).not.toBe(NOTIFY);
      const found = issues(text);
      const hit = found.find((i) => i.field.startsWith(field) && message.test(i.message));
      expect(hit, JSON.stringify(found)).toBeDefined();
      expect(hit!.line).toBe(lineOf(text, line));
    });
  }

  it('the example in docs/sms.md is a valid config', () => {
    const md = readFileSync(join(REPO_ROOT, 'docs/sms.md'), 'utf8');
    const blocks = [...md.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((b) => b.includes('asterisk:'));
    expect(blocks.length).toBeGreaterThan(0);
    const env = { ARI_USER: 'u', ARI_PASSWORD: 'p', AMI_USER: 'u', AMI_SECRET: 's', TWILIO_SID: ENV.TWILIO_SID, TWILIO_TOKEN: 't', AOS_TOKEN: 't', AOS_CLIENT_ID: 'c', AOS_SMS_CODE: 'x' };
    for (const b of blocks) expect(() => parseConfigText(b, 'docs/sms.md', rootSchema, env)).not.toThrow();
  });
});
