import fc from 'fast-check';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rootSchema } from '../../src/app/config-schema.js';
import { ConfigError, parseConfigText } from '../../src/config/load.js';
import { buildRequest, sendRequest, type Encoding, type HttpMethod, type RequestSpec } from '../../src/http/request.js';
import { parseXml } from '../helpers/xml.js';

/**
 * Every place a merge-field value lands (URL path, query, form, JSON, XML, header) with hostile
 * Unicode: a local stand-in receives the real request (undici, as in production) and parses each
 * place back the way a real server does. It must get the original value, or the documented
 * replacement: U+FFFD for a lone surrogate anywhere, and in XML also for what XML 1.0 cannot carry
 * (C0 controls but tab/LF/CR, U+FFFE, U+FFFF). Header values arrive percent-encoded where HTTP
 * cannot carry them and decode with decodeURIComponent. No request may fail or throw.
 */

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

let server: Server;
let base = '';
const received: Received[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const LONE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const replaced = (v: string) => v.replace(LONE, '\uFFFD');
const xmlReplaced = (v: string) => replaced(v).replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '\uFFFD');

type Place = 'path' | 'query' | 'header' | 'form' | 'form-template' | 'json' | 'json-template' | 'xml' | 'xml-template' | 'get-query';

const PLACES: Record<Place, { spec: Omit<RequestSpec, 'timeoutMs' | 'url'> & { url: string }; read(r: Received): string; expect(v: string): string }> = {
  path: { spec: { url: '/p/{v}/end', method: 'POST', encoding: 'form' }, read: (r) => decodeURIComponent(r.url.split('/')[2]!), expect: replaced },
  query: { spec: { url: '/q?v={v}&z=1', method: 'POST', encoding: 'form' }, read: (r) => new URL(r.url, base).searchParams.get('v')!, expect: replaced },
  header: { spec: { url: '/h', method: 'POST', encoding: 'form', headers: { 'X-Value': '{v}' } }, read: (r) => decodeURIComponent(String(r.headers['x-value'] ?? '')), expect: replaced },
  form: { spec: { url: '/f', method: 'POST', encoding: 'form', body: { a: '1', v: '{v}' } }, read: (r) => new URLSearchParams(r.body).get('v')!, expect: replaced },
  'form-template': { spec: { url: '/f', method: 'POST', encoding: 'form', body: 'a=1&v={v}&z=2' }, read: (r) => new URLSearchParams(r.body).get('v')!, expect: replaced },
  json: { spec: { url: '/j', method: 'POST', encoding: 'json', body: { v: '{v}' } }, read: (r) => (JSON.parse(r.body) as { v: string }).v, expect: replaced },
  'json-template': { spec: { url: '/j', method: 'POST', encoding: 'json', body: '{"v":"{v}","z":1}' }, read: (r) => (JSON.parse(r.body) as { v: string }).v, expect: replaced },
  xml: { spec: { url: '/x', method: 'POST', encoding: 'xml', body: { v: '{v}' } }, read: (r) => parseXml(r.body).children[0]!.text, expect: xmlReplaced },
  'xml-template': { spec: { url: '/x', method: 'POST', encoding: 'xml', body: '<r a="{v}"><v>{v}</v></r>' }, read: (r) => parseXml(r.body).children[0]!.text, expect: xmlReplaced },
  'get-query': { spec: { url: '/g', method: 'GET' as HttpMethod, encoding: 'query' as Encoding, body: { v: '{v}' } }, read: (r) => new URL(r.url, base).searchParams.get('v')!, expect: replaced },
};

async function roundTrip(place: Place, value: string): Promise<string> {
  const p = PLACES[place];
  const built = buildRequest({ ...p.spec, url: base + p.spec.url, timeoutMs: 5000 }, { v: value });
  received.length = 0;
  const res = await sendRequest(built, { timeoutMs: 5000 });
  expect(res.status).toBe(200);
  expect(received).toHaveLength(1);
  return p.read(received[0]!);
}

describe('values HTTP cannot carry as they are', () => {
  it.each([
    ['a Japanese caller name', '山田太郎'],
    ['NUL', 'a\u0000b'],
    ['a lone surrogate', 'x\uD83Dy'],
    ['CR LF', 'a\r\nX-Injected: 1'],
    ['a percent sign', '100%41'],
    ['spaces at the ends', ' padded\t'],
  ])('a header carrying %s is sent and decodes back', async (_what, value) => {
    expect(await roundTrip('header', value)).toBe(replaced(value));
  });

  it.each(['form', 'form-template', 'query', 'path', 'get-query'] as const)('a lone surrogate in %s is replaced, never thrown', async (place) => {
    expect(await roundTrip(place, 'a\uDE00b\uD800')).toBe('a\uFFFDb\uFFFD');
  });

  it('printable ASCII in a header is sent as it is', async () => {
    await roundTrip('header', 'Bearer abc-123_x.y');
    expect(received[0]!.headers['x-value']).toBe('Bearer abc-123_x.y');
  });

  it("refuses non-ASCII in the admin's own header text at load, with its place", () => {
    const text = `asterisk:\n  ari: { user: u, password: p }\nhooks:\n  - on: call.start\n    request: { url: "http://127.0.0.1:9/x", headers: { X-Note: "山田 {caller}" } }\n`;
    let issues: ConfigError['issues'] = [];
    try {
      parseConfigText(text, 'cfg.yaml', rootSchema, {});
    } catch (e) {
      issues = (e as ConfigError).issues;
    }
    expect(issues).toEqual([expect.objectContaining({ line: 5, field: 'hooks[0].request.headers.X-Note', message: expect.stringMatching(/printable ASCII/) })]);
  });
});

// Strings a caller name, a DTMF answer or an API field could hold: any code point, any UTF-16
// unit (lone surrogates included), and a dense mix of the characters each encoding cares about.
const SPECIAL = ['\r', '\n', '\t', '\u0000', '\u001f', '%', '+', '&', '=', '?', '#', '/', '<', '>', '"', "'", '\\', ' ', '{', '}', '山', '😀', '\uD800', '\uDFFF', '\uFFFE', '\u2028', 'é'];
const hostile = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 40 }),
  fc.string({ unit: fc.constantFrom(...SPECIAL), maxLength: 40 }),
);

describe('fuzz: generated Unicode in every landing place', () => {
  it.each(Object.keys(PLACES) as Place[])('%s: the stand-in reads back the value or its documented replacement', async (place) => {
    await fc.assert(
      fc.asyncProperty(hostile, async (value) => {
        expect(await roundTrip(place, value)).toBe(PLACES[place].expect(value));
      }),
      { numRuns: 300 },
    );
  }, 120_000);
});
