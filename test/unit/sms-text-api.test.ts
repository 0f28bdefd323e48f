import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fetchSmsText, textApiSchema } from '../../src/sms/text-api.js';

interface Seen {
  method: string;
  url: URL;
  type: string;
  raw: string;
}

let server: Server;
let base: string;
let seen: Seen[] = [];
let reply: (req: IncomingMessage, res: ServerResponse) => void;

beforeAll(async () => {
  server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8').on('data', (c: string) => (raw += c));
    req.on('end', () => {
      seen.push({ method: req.method!, url: new URL(req.url!, 'http://x'), type: String(req.headers['content-type'] ?? ''), raw });
      reply(req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
beforeEach(() => {
  seen = [];
  reply = (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data: { sms: 'Your order 42 ships today' } }));
});

const vars = { caller: '+48601234567', called: '+48221131415', callId: '1700000000.42', queue: 'vip' };
const cfg = (over: Record<string, unknown> = {}) =>
  textApiSchema.parse({ url: `${base}/sms-text`, field: 'data.sms', fields: { shop: 'berlin-1', q: '{queue}' }, timeout: '500ms', ...over });

describe("text from the customer's API", () => {
  it('GET: the seed fields and the custom fields in the query; the text from a dotted field', async () => {
    const r = await fetchSmsText(cfg(), vars);
    expect(r).toMatchObject({ ok: true, text: 'Your order 42 ships today' });
    expect(seen[0]!.method).toBe('GET');
    expect(Object.fromEntries(seen[0]!.url.searchParams)).toEqual({ from_number: '+48601234567', to_number: '+48221131415', call_id: '1700000000.42', shop: 'berlin-1', q: 'vip' });
  });

  it('POST: a form by default, JSON on request', async () => {
    await fetchSmsText(cfg({ method: 'POST' }), vars);
    expect(seen[0]!.type).toMatch(/^application\/x-www-form-urlencoded/);
    expect(Object.fromEntries(new URLSearchParams(seen[0]!.raw))).toMatchObject({ from_number: '+48601234567', to_number: '+48221131415', call_id: '1700000000.42', shop: 'berlin-1' });
    await fetchSmsText(cfg({ method: 'POST', encoding: 'json' }), vars);
    expect(seen[1]!.type).toMatch(/^application\/json/);
    expect(JSON.parse(seen[1]!.raw)).toEqual({ from_number: '+48601234567', to_number: '+48221131415', call_id: '1700000000.42', shop: 'berlin-1', q: 'vip' });
  });

  it('without `field` the whole (plain-text) answer is the text', async () => {
    reply = (_q, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('  Thanks for calling  \n');
    expect(await fetchSmsText(cfg({ field: undefined }), vars)).toMatchObject({ ok: true, text: 'Thanks for calling' });
  });

  const failures: Array<[string, (q: IncomingMessage, res: ServerResponse) => void, RegExp, Record<string, unknown>?]> = [
    ['times out', () => undefined, /^timeout after 500 ms$/],
    ['answers 500', (_q, res) => res.writeHead(500).end('oops'), /^http-500$/],
    ['answers 404', (_q, res) => res.writeHead(404).end('no'), /^http-404$/],
    ['answers malformed JSON', (_q, res) => res.writeHead(200).end('{"data": {'), /^malformed JSON$/],
    ['lacks the field', (_q, res) => res.writeHead(200).end('{"data": {}}'), /^no field "data\.sms" in the answer$/],
    ['has an empty field', (_q, res) => res.writeHead(200).end('{"data": {"sms": "  "}}'), /^field "data\.sms" is empty$/],
    ['has a non-text field', (_q, res) => res.writeHead(200).end('{"data": {"sms": {"a": 1}}}'), /^field "data\.sms" is not text$/],
    ['answers a text too long for an SMS', (_q, res) => res.writeHead(200).end(JSON.stringify({ data: { sms: 'x'.repeat(1601) } })), /^text longer than 1600 characters$/],
  ];
  for (const [what, handler, reason] of failures) {
    it(`fails with a reason when the API ${what}`, async () => {
      reply = handler;
      const started = Date.now();
      const r = await fetchSmsText(cfg(), vars);
      expect(r.ok).toBe(false);
      expect(r.ok === false && r.reason).toMatch(reason);
      expect(Date.now() - started).toBeLessThan(1500); // never longer than the timeout (plus slack)
    });
  }

  it('fails with a reason when nothing listens', async () => {
    const r = await fetchSmsText(cfg({ url: 'http://127.0.0.1:1/x' }), vars);
    expect(r.ok === false && r.reason).toMatch(/^connect: ECONNREFUSED/);
  });

  it('config: the seed fields cannot be redefined; GET takes no encoding; a timeout holds a caller at most 30 s', () => {
    const r = textApiSchema.safeParse({ url: 'https://crm.example.com/t', fields: { call_id: 'x' }, encoding: 'json', timeout: '31s' });
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => i.path.join('.')).sort()).toEqual(['encoding', 'fields.call_id', 'timeout']);
    expect(textApiSchema.parse({ url: 'https://crm.example.com/t' })).toMatchObject({ method: 'GET', timeout: 3000, onError: 'skip' });
  });
});
