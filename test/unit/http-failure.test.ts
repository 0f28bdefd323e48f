import { describe, expect, it } from 'vitest';
import { classify, parseRetryAfter, type AttemptResult, type FailureRules } from '../../src/http/failure.js';

const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);
const seed: FailureRules = { errorMatch: /300/ };
const aossmsOk = '{"responseCode":200,"responseMessage":"Success."}';
const aossmsQuota = '{"responseCode":300,"responseMessage":"quota"}';

const res = (status: number, body = '', headers: Record<string, string> = {}): AttemptResult => ({
  kind: 'response',
  status,
  body,
  headers,
});
const transport = (kind: 'timeout' | 'connect' | 'aborted' | 'other'): AttemptResult => ({
  kind: 'transport',
  error: { kind, message: kind },
});

const table: Array<[string, AttemptResult, FailureRules, string, string, number?]> = [
  // name, result, rules, outcome, reason, retryAfterMs
  ['2xx plain', res(200, aossmsOk), {}, 'ok', 'http-200'],
  ['2xx seed ok body', res(200, aossmsOk), seed, 'ok', 'http-200'],
  ['2xx seed quota body', res(200, aossmsQuota), seed, 'retry', 'error-match'],
  ['201 created', res(201, '{}'), {}, 'ok', 'http-201'],
  ['success pattern matches', res(200, aossmsOk), { successMatch: /"responseCode":200/ }, 'ok', 'http-200'],
  ['success pattern missing', res(200, '{"responseCode":401}'), { successMatch: /"responseCode":200/ }, 'final', 'no-success-match'],
  ['error pattern outranks success pattern', res(200, aossmsQuota), { errorMatch: /"responseCode":300/, successMatch: /responseCode/ }, 'retry', 'error-match'],
  ['error pattern on a 4xx body', res(400, aossmsQuota), seed, 'retry', 'error-match'],
  ['400 final', res(400, 'bad'), seed, 'final', 'http-400'],
  ['401 final', res(401, 'Authentication failed.'), seed, 'final', 'http-401'],
  ['404 final', res(404), {}, 'final', 'http-404'],
  ['410 gone final (Wazo)', res(410), {}, 'final', 'http-410'],
  ['408 retry', res(408), {}, 'retry', 'http-408'],
  ['429 retry', res(429), {}, 'retry', 'http-429'],
  ['429 retry-after seconds', res(429, '', { 'Retry-After': '7' }), {}, 'retry', 'http-429', 7000],
  ['503 retry-after date', res(503, '', { 'retry-after': new Date(NOW + 30_000).toUTCString() }), {}, 'retry', 'http-503', 30_000],
  ['500 retry', res(500), {}, 'retry', 'http-500'],
  ['502 retry', res(502), {}, 'retry', 'http-502'],
  ['configured error status', res(409), { errorStatus: [409] }, 'retry', 'http-409'],
  ['redirect not followed', res(302, '', { location: '/elsewhere' }), {}, 'final', 'http-302'],
  ['timeout', transport('timeout'), seed, 'retry', 'timeout'],
  ['connection refused', transport('connect'), seed, 'retry', 'connect'],
  ['socket reset', transport('other'), seed, 'retry', 'other'],
  ['our shutdown', transport('aborted'), seed, 'retry', 'aborted'],
  ['our own bug', { kind: 'thrown', error: new TypeError('x is undefined') }, seed, 'unexpected', 'exception'],
];

describe('classify', () => {
  it.each(table)('%s', (_name, result, rules, outcome, reason, retryAfterMs) => {
    const c = classify(result, rules, NOW);
    expect(c.outcome).toBe(outcome);
    expect(c.reason).toBe(reason);
    expect(c.retryAfterMs).toBe(retryAfterMs);
  });

  it('gives the same answer for a global regex however often it is used', () => {
    const rules = { errorMatch: /300/g };
    const results = [1, 2, 3].map(() => classify(res(200, aossmsQuota), rules, NOW).outcome);
    expect(results).toEqual(['retry', 'retry', 'retry']);
  });
});

describe('parseRetryAfter', () => {
  it.each([
    [undefined, undefined],
    ['0', 0],
    [' 12 ', 12_000],
    ['soon', undefined],
    ['-5', undefined],
    [new Date(NOW - 60_000).toUTCString(), 0],
  ])('%j → %j', (value, ms) => {
    expect(parseRetryAfter(value, NOW)).toBe(ms);
  });
});
