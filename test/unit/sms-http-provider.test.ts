import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LinearRegex } from '../../src/config/regex.js';
import { createHttpProvider, httpProviderSchema } from '../../src/sms/http-provider.js';
import {
  DEFAULT_CREDENTIALS,
  http429,
  malformed,
  quota300,
  slow,
  startAossms,
  type AossmsStandIn,
} from '../standins/aossms.js';

/** The seed 000 provider, written the way an admin writes it in YAML. */
function seedConfig(url: string, over: Record<string, unknown> = {}) {
  return {
    kind: 'http',
    url,
    method: 'POST',
    encoding: 'form',
    body: {
      token: DEFAULT_CREDENTIALS.token,
      clientId: Number(DEFAULT_CREDENTIALS.clientId), // YAML reads 1234 as a number
      smsCode: DEFAULT_CREDENTIALS.smsCode,
      message: '{message}',
      phoneNumber: '{to}',
    },
    timeout: '10s',
    error: { match: '/300/' },
    retry: { count: 2, interval: '5s' },
    ...over,
  };
}

describe('httpProviderSchema', () => {
  it('accepts the seed 000 provider by configuration alone', () => {
    const c = httpProviderSchema.parse(seedConfig('https://qpd-api.aossms.com/p1/api/mt.json'));
    expect(c).toMatchObject({ kind: 'http', method: 'POST', encoding: 'form', timeout: 10_000, retry: { count: 2, interval: 5_000 } });
    expect(c.body).toMatchObject({ clientId: '1234', phoneNumber: '{to}' });
    expect(c.error?.match).toBeInstanceOf(LinearRegex);
    expect(c.error?.match?.test('{"responseCode":300}')).toBe(true);
  });

  it('fills defaults: POST, form, 10 s, no retries', () => {
    const c = httpProviderSchema.parse({ kind: 'http', url: 'https://sms.example.com/{to}' });
    expect(c).toMatchObject({ method: 'POST', encoding: 'form', timeout: 10_000, retry: { count: 0, interval: 5_000 } });
  });

  it.each([
    ['an unknown merge field', { body: { phoneNumber: '{TEL}' } }, /unknown merge field \{TEL\}/],
    ['a URL that is not http(s)', { url: 'ftp://x/{to}' }, /http:\/\/ or https:\/\//],
    ['a GET with a form body', { method: 'GET' }, /encoding: query/],
    ['too many retries', { retry: { count: 11 } }, /"path":\["retry","count"\],"message":"Too big: expected number to be <=10"/],
    ['an invalid pattern', { error: { match: '/(/' } }, /invalid regular expression/],
    ['an unknown key', { retries: 2 }, /Unrecognized key: \\"retries\\"/],
    ['DELETE', { method: 'DELETE' }, /"path":\["method"\]/],
  ])('rejects %s', (_name, over, message) => {
    const r = httpProviderSchema.safeParse(seedConfig('https://qpd-api.aossms.com/p1/api/mt.json', over));
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toMatch(message);
  });
});

describe('createHttpProvider against the seed 000 stand-in', () => {
  let s: AossmsStandIn;
  beforeAll(async () => {
    s = await startAossms();
  });
  afterAll(() => s.close());
  beforeEach(() => {
    s.setDefault({ kind: 'ok' });
  });

  const make = (over: Record<string, unknown> = {}) =>
    createHttpProvider('aossms', httpProviderSchema.parse(seedConfig(s.endpoint, over)));
  const msg = { messageId: 'm-1', to: '+819012345678', text: 'こんにちは & see https://x.example/?a=1&b=2' };

  it('sends the contract fields and reports ok', async () => {
    const before = s.requests.length;
    const p = make();
    expect(p.retry).toEqual({ count: 2, intervalMs: 5_000, backoff: 1 });
    const r = await p.send(msg);
    expect(r).toMatchObject({ outcome: 'ok', status: 200 });
    expect(r.body).toContain('"responseCode":200');
    const got = s.requests[before]!;
    expect(got.fields).toEqual({ ...DEFAULT_CREDENTIALS, message: msg.text, phoneNumber: msg.to });
    expect(got.headers['content-type']).toBe('application/x-www-form-urlencoded');
  });

  it('reports quota (code 300) as retry', async () => {
    s.enqueue(quota300);
    expect(await make().send(msg)).toMatchObject({ outcome: 'retry', reason: 'error-match', status: 200 });
  });

  it('reports bad credentials as final', async () => {
    const p = make({ body: { ...seedConfig('').body, token: 'wrong' } });
    expect(await p.send(msg)).toMatchObject({ outcome: 'final', status: 401 });
  });

  it('reports a request missing a contract field as final', async () => {
    const { smsCode: _omitted, ...rest } = DEFAULT_CREDENTIALS;
    const p = make({ body: { ...rest, message: '{message}', phoneNumber: '{to}' } });
    const r = await p.send(msg);
    expect(r).toMatchObject({ outcome: 'final', status: 400 });
    expect(r.body).toMatch(/missing parameter: smsCode/);
  });

  it('passes Retry-After on', async () => {
    s.enqueue(http429(3));
    expect(await make().send(msg)).toMatchObject({ outcome: 'retry', status: 429, retryAfterMs: 3000 });
  });

  it('turns a timeout into retry with the error text', async () => {
    s.enqueue(slow(1000));
    const r = await make({ timeout: '200ms' }).send(msg);
    expect(r).toMatchObject({ outcome: 'retry', reason: 'timeout' });
    expect(r.status).toBeUndefined();
    expect(r.error).toMatch(/timeout/);
  });

  it('treats a malformed 200 as ok under the seed rules, and as final with a success pattern', async () => {
    s.enqueue(malformed, malformed);
    expect((await make().send(msg)).outcome).toBe('ok');
    const strict = make({ success: { match: '/"responseCode"\\s*:\\s*200\\b/' } });
    expect(await strict.send(msg)).toMatchObject({ outcome: 'final', reason: 'no-success-match' });
  });

  it("shows why the seed's bare /300/ is risky: an echoed number containing 300 reads as quota", async () => {
    const echoed = { ...msg, to: '+819030012345' };
    expect((await make().send(echoed)).outcome).toBe('retry');
    const precise = make({ error: { match: '/"responseCode"\\s*:\\s*300\\b/' } });
    expect((await precise.send(echoed)).outcome).toBe('ok');
  });

  it('offers {messageId} to templates and extracts the provider id', async () => {
    const before = s.requests.length;
    const p = make({
      body: { ...seedConfig('').body, ref: '{messageId}' },
      messageIdMatch: '/"phoneNumber":"([^"]+)"/',
    });
    const r = await p.send(msg);
    expect(s.requests[before]!.fields.ref).toBe('m-1');
    expect(r.providerMessageId).toBe(msg.to);
  });
});
