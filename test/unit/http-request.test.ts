import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from 'undici';
import { buildRequest, sendRequest, TransportError, type RequestSpec } from '../../src/http/request.js';
import { parseXml } from '../helpers/xml.js';

const NASTY = ['&phoneNumber=999', 'say "hi"', 'a<b>&c', 'line1\nline2\r\n', 'こんにちは 😀', "it's+plus %41"];

function spec(over: Partial<RequestSpec>): RequestSpec {
  return { url: 'https://sms.example.com/send', method: 'POST', encoding: 'form', timeoutMs: 1000, ...over };
}

/** Element name → unescaped text, and proof that nothing but flat elements came out. */
function parseFlatXml(xml: string, root: string): Record<string, string> {
  const m = new RegExp(`^<\\?xml version="1.0" encoding="UTF-8"\\?><${root}>(.*)</${root}>$`, 's').exec(xml);
  if (!m) throw new Error(`not a <${root}> document: ${xml}`);
  const out: Record<string, string> = {};
  const inner = m[1]!;
  const re = /<([A-Za-z_][\w.-]*)>([^<]*)<\/\1>/gy;
  let last = 0;
  for (let e = re.exec(inner); e; e = re.exec(inner)) {
    out[e[1]!] = e[2]!
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&apos;/g, "'")
      .replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)))
      .replace(/&amp;/g, '&');
    last = re.lastIndex;
  }
  if (last !== inner.length) throw new Error(`unexpected XML structure: ${inner.slice(last)}`);
  return out;
}

describe('buildRequest: form', () => {
  it.each(NASTY)('a record body keeps %j as one field value', (caller) => {
    const b = buildRequest(
      spec({ body: { token: 'T', message: 'Call {to} back', phoneNumber: '{to}' } }),
      { to: caller },
    );
    const params = new URLSearchParams(b.body!);
    expect([...params.keys()]).toEqual(['token', 'message', 'phoneNumber']);
    expect(params.getAll('phoneNumber')).toEqual([caller]);
    expect(params.get('message')).toBe(`Call ${caller} back`);
    expect(b.headers['content-type']).toBe('application/x-www-form-urlencoded');
  });

  it('a whole-body template (seed hook style) escapes only the merge fields', () => {
    const b = buildRequest(
      spec({ body: 'token=abc&clientId=12&message=Thanks%21&phoneNumber={TEL}' }),
      { TEL: '+8190&phoneNumber=999' },
    );
    const params = new URLSearchParams(b.body!);
    expect(params.getAll('phoneNumber')).toEqual(['+8190&phoneNumber=999']);
    expect(params.get('message')).toBe('Thanks!');
    expect([...params.keys()]).toEqual(['token', 'clientId', 'message', 'phoneNumber']);
  });

  it('literal text in a record value is encoded too, so an & in the template stays in its field', () => {
    const b = buildRequest(spec({ body: { message: 'Q&A at {to}' } }), { to: 'x' });
    expect(Object.fromEntries(new URLSearchParams(b.body!))).toEqual({ message: 'Q&A at x' });
  });

  // field names are escaped once per request spec, not per request: they must still be escaped
  it('escapes field names too, in a form body and in a query', () => {
    const body = { 'to&x=1': '{to}', 'a b': 'c', '名前': 'n' };
    const form = buildRequest(spec({ body }), { to: 'y' });
    expect(form.body).toBe('to%26x%3D1=y&a+b=c&%E5%90%8D%E5%89%8D=n');
    const query = buildRequest(spec({ method: 'GET', encoding: 'query', url: 'https://api.example.com/r', body }), { to: 'y' });
    expect(query.url).toBe('https://api.example.com/r?to%26x%3D1=y&a+b=c&%E5%90%8D%E5%89%8D=n');
  });
});

describe('buildRequest: json', () => {
  it.each(NASTY)('a record body round-trips %j as a string value', (caller) => {
    const b = buildRequest(spec({ encoding: 'json', body: { to: '{to}', text: '<{to}>' } }), { to: caller });
    expect(JSON.parse(b.body!)).toEqual({ to: caller, text: `<${caller}>` });
    expect(b.headers['content-type']).toMatch(/^application\/json/);
  });

  it.each(NASTY)('a whole-body template keeps %j inside its string literal', (caller) => {
    const b = buildRequest(spec({ encoding: 'json', body: '{{"to":"{to}","n":1}}' }), { to: caller });
    expect(JSON.parse(b.body!)).toEqual({ to: caller, n: 1 });
  });
});

describe('buildRequest: query', () => {
  it.each(NASTY)('fields go to the query string and %j stays one value', (caller) => {
    const b = buildRequest(
      spec({ method: 'GET', encoding: 'query', url: 'https://api.example.com/route?fixed=1', body: { caller: '{to}', digits: '12#' } }),
      { to: caller },
    );
    expect(b.body).toBeUndefined();
    const u = new URL(b.url);
    expect(u.origin + u.pathname).toBe('https://api.example.com/route');
    expect([...u.searchParams.keys()]).toEqual(['fixed', 'caller', 'digits']);
    expect(u.searchParams.get('caller')).toBe(caller);
    expect(u.searchParams.get('digits')).toBe('12#');
    expect(u.hash).toBe('');
    expect(b.headers['content-type']).toBeUndefined();
  });

  it('merge fields in the URL are percent-encoded and cannot change the path or query', () => {
    const b = buildRequest(spec({ method: 'GET', url: 'https://api.example.com/calls/{id}/sms?to={to}' }), {
      id: '../admin?x=1#',
      to: '+81 90&evil=1',
    });
    const u = new URL(b.url);
    expect(u.pathname).toBe('/calls/..%2Fadmin%3Fx%3D1%23/sms');
    expect([...u.searchParams.entries()]).toEqual([['to', '+81 90&evil=1']]);
  });
});

describe('buildRequest: xml', () => {
  it.each(NASTY)('a record body escapes %j as element text', (caller) => {
    const b = buildRequest(spec({ encoding: 'xml', body: { caller: '{to}', note: 'from {to}' } }), { to: caller });
    expect(parseFlatXml(b.body!, 'request')).toEqual({ caller, note: `from ${caller}` });
    expect(b.headers['content-type']).toMatch(/^application\/xml/);
  });

  it('tab, CR and LF survive an XML parser as character references (a raw CR LF would become LF)', () => {
    const value = 'a\r\nb\rc\nd\te\r\n';
    for (const body of [{ v: '{to}' }, '<request><v>{to}</v></request>']) {
      const b = buildRequest(spec({ encoding: 'xml', body }), { to: value });
      expect(b.body).not.toMatch(/[\t\r\n]/);
      expect(parseXml(b.body!).children[0]!.text).toBe(value);
    }
  });

  it('an element injection attempt stays text', () => {
    const b = buildRequest(spec({ encoding: 'xml', body: '<request><to>{to}</to></request>' }), {
      to: '</to><admin>1</admin><to>',
    });
    expect(b.body).toBe('<request><to>&lt;/to&gt;&lt;admin&gt;1&lt;/admin&gt;&lt;to&gt;</to></request>');
  });

  it('uses the configured root element and rejects invalid element names', () => {
    const b = buildRequest(spec({ encoding: 'xml', xmlRoot: 'sms', body: { to: '1' } }), {});
    expect(parseFlatXml(b.body!, 'sms')).toEqual({ to: '1' });
    expect(() => buildRequest(spec({ encoding: 'xml', body: { 'bad name': 'x' } }), {})).toThrow(/XML element name/);
  });
});

describe('buildRequest: headers and bookkeeping', () => {
  it('percent-encodes line breaks in a header value, so nothing is injected', () => {
    const b = buildRequest(spec({ headers: { 'X-Caller': '{to}' } }), { to: 'a\r\nX-Injected: 1' });
    expect(b.headers['X-Caller']).toBe('a%0D%0AX-Injected: 1');
    expect(Object.keys(b.headers)).not.toContain('X-Injected');
  });

  it("keeps the admin's Content-Type instead of adding a second one", () => {
    const b = buildRequest(spec({ headers: { 'Content-Type': 'application/x-www-form-urlencoded; charset=UTF-8' }, body: { a: '1' } }), {});
    expect(Object.keys(b.headers).filter((k) => k.toLowerCase() === 'content-type')).toEqual(['Content-Type']);
  });

  it('reports merge fields without a value once each', () => {
    const b = buildRequest(spec({ url: 'https://x.example/{a}', headers: { h: '{b}' }, body: { x: '{a}{c}' } }), { c: '1' });
    expect(b.missing.sort()).toEqual(['a', 'b']);
  });
});

// ---------------------------------------------------------------------------------------------

let server: Server | undefined;
let agent: Agent | undefined;
afterEach(async () => {
  await agent?.destroy();
  agent = undefined;
  if (server) {
    server.closeAllConnections();
    await new Promise((r) => server!.close(r));
    server = undefined;
  }
});

async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; connections: () => number }> {
  let connections = 0;
  server = createServer(handler);
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => connections };
}

describe('sendRequest', () => {
  it('returns status, lower-cased headers, body and latency, and reuses the connection', async () => {
    const bodies: string[] = [];
    const s = await serve((req, res) => {
      let b = '';
      req.on('data', (c) => (b += c));
      req.on('end', () => {
        bodies.push(`${req.method} ${req.headers['content-type']} ${b}`);
        res.writeHead(201, { 'X-Id': 'abc' }).end('{"ok":true}');
      });
    });
    agent = new Agent({ keepAliveTimeout: 5_000 });
    const built = buildRequest(spec({ url: `${s.url}/send`, body: { to: '{to}' } }), { to: '+1' });
    const first = await sendRequest(built, { timeoutMs: 2000, dispatcher: agent });
    // undici returns the socket to the pool a tick after the body ends.
    await new Promise((r) => setImmediate(r));
    const second = await sendRequest(built, { timeoutMs: 2000, dispatcher: agent });
    expect(first).toMatchObject({ status: 201, body: '{"ok":true}', truncated: false });
    expect(first.headers['x-id']).toBe('abc');
    expect(first.latencyMs).toBeGreaterThanOrEqual(0);
    expect(second.status).toBe(201);
    expect(bodies).toEqual(Array(2).fill('POST application/x-www-form-urlencoded to=%2B1'));
    expect(s.connections()).toBe(1);
  });

  it('times out a server that never answers', async () => {
    const s = await serve(() => {
      /* never answers */
    });
    const started = Date.now();
    const err = await sendRequest(buildRequest(spec({ url: s.url }), {}), { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).kind).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('times out a body that stalls after the headers', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
    });
    const err = await sendRequest(buildRequest(spec({ url: s.url }), {}), { timeoutMs: 300 }).catch((e: unknown) => e);
    expect((err as TransportError).kind).toBe('timeout');
  });

  it('reports a refused connection as connect', async () => {
    const s = await serve(() => undefined);
    server!.close();
    server = undefined;
    const err = await sendRequest(buildRequest(spec({ url: s.url }), {}), { timeoutMs: 2000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).kind).toBe('connect');
  });

  it('keeps at most maxBodyBytes of the answer', async () => {
    const s = await serve((_req, res) => res.end('x'.repeat(200_000)));
    const res = await sendRequest(buildRequest(spec({ url: s.url }), {}), { timeoutMs: 2000, maxBodyBytes: 1024 });
    expect(res.body.length).toBe(1024);
    expect(res.truncated).toBe(true);
  });

  it('reports cancellation through the signal as aborted, not timeout', async () => {
    const s = await serve(() => undefined);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const err = await sendRequest(buildRequest(spec({ url: s.url }), {}), { timeoutMs: 5000, signal: ac.signal }).catch(
      (e: unknown) => e,
    );
    expect((err as TransportError).kind).toBe('aborted');
  });
});
