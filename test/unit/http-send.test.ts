import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from 'undici';
import { buildAndSend, sendAndClassify, type Sent } from '../../src/http/send.js';

interface Seen {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

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

/** A local endpoint that records each request it has read whole, then answers with `reply`. */
async function serve(reply: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method!, path: req.url!, headers: req.headers, body });
      reply(req, res);
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  agent = new Agent({ keepAliveTimeout: 1_000 });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

function expectKind<K extends Sent['kind']>(sent: Sent, kind: K): Extract<Sent, { kind: K }> {
  expect(sent.kind, JSON.stringify(sent)).toBe(kind);
  return sent as Extract<Sent, { kind: K }>;
}

describe('sendAndClassify', () => {
  it('sends method, headers and body, and returns the answer classified ok', async () => {
    const s = await serve((_req, res) => res.writeHead(201, { 'X-Id': 'abc', 'content-type': 'application/json' }).end('{"id":"m1"}'));
    const sent = await sendAndClassify({
      method: 'PUT',
      url: `${s.url}/messages?x=1`,
      headers: { 'content-type': 'text/plain', 'x-token': 't0k' },
      body: 'hello',
      timeoutMs: 2_000,
      dispatcher: agent,
    });
    const res = expectKind(sent, 'response');
    expect(res).toMatchObject({ outcome: 'ok', reason: 'http-201', status: 201, body: '{"id":"m1"}', truncated: false });
    expect(res.headers['x-id']).toBe('abc');
    expect(res.retryAfterMs).toBeUndefined();
    expect(s.seen).toHaveLength(1);
    expect(s.seen[0]).toMatchObject({ method: 'PUT', path: '/messages?x=1', body: 'hello' });
    expect(s.seen[0]!.headers['x-token']).toBe('t0k');
    expect(s.seen[0]!.headers['content-type']).toBe('text/plain');
  });

  it('classifies a 503 as retry and keeps its status and body', async () => {
    const s = await serve((_req, res) => res.writeHead(503).end('maintenance'));
    const res = expectKind(await sendAndClassify({ method: 'GET', url: s.url, timeoutMs: 2_000, dispatcher: agent }), 'response');
    expect(res).toMatchObject({ outcome: 'retry', reason: 'http-503', status: 503, body: 'maintenance' });
  });

  it("applies the caller's failure rules to the answer", async () => {
    const s = await serve((_req, res) => res.writeHead(200).end('{"code":300,"msg":"quota"}'));
    const plain = await sendAndClassify({ method: 'POST', url: s.url, timeoutMs: 2_000, dispatcher: agent });
    const ruled = await sendAndClassify({ method: 'POST', url: s.url, timeoutMs: 2_000, dispatcher: agent, rules: { errorMatch: /"code":300/ } });
    expect(plain).toMatchObject({ kind: 'response', outcome: 'ok' });
    expect(ruled).toMatchObject({ kind: 'response', outcome: 'retry', reason: 'error-match', status: 200 });
  });

  it('reads Retry-After of a 429 into retryAfterMs', async () => {
    const s = await serve((_req, res) => res.writeHead(429, { 'Retry-After': '7' }).end('slow down'));
    const res = expectKind(await sendAndClassify({ method: 'POST', url: s.url, timeoutMs: 2_000, dispatcher: agent }), 'response');
    expect(res).toMatchObject({ outcome: 'retry', reason: 'http-429', status: 429, retryAfterMs: 7_000 });
    expect(res.headers['retry-after']).toBe('7');
  });

  it('reports a connection reset as a transport failure to retry, without throwing', async () => {
    const s = await serve((req) => req.socket.resetAndDestroy());
    const t = expectKind(await sendAndClassify({ method: 'POST', url: s.url, body: 'x', timeoutMs: 2_000, dispatcher: agent }), 'transport');
    expect(t).toMatchObject({ outcome: 'retry', reason: 'other', error: { kind: 'other' } });
    expect(t.message).toMatch(/ECONNRESET|UND_ERR_SOCKET/);
    expect(t.error.message).toBe(t.message);
    expect(s.seen).toHaveLength(1);
  });

  it('times out a server that never answers, within the deadline', async () => {
    const s = await serve(() => {
      /* never answers */
    });
    const started = Date.now();
    const t = expectKind(await sendAndClassify({ method: 'GET', url: s.url, timeoutMs: 300, dispatcher: agent }), 'transport');
    const took = Date.now() - started;
    expect(t).toMatchObject({ outcome: 'retry', reason: 'timeout', error: { kind: 'timeout' } });
    expect(t.latencyMs).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(2_000);
  });

  it('gives up on a timed-out request when the endpoint must not see it twice', async () => {
    const s = await serve(() => undefined);
    const sent = await sendAndClassify({ method: 'POST', url: s.url, timeoutMs: 200, dispatcher: agent, rules: { retryOnTimeout: false } });
    expect(sent).toMatchObject({ kind: 'transport', outcome: 'final', reason: 'timeout' });
  });

  it('keeps at most maxBodyBytes of a longer answer, and classifies what it kept', async () => {
    // The error marker lies past the limit, so only the kept prefix can be matched.
    const s = await serve((_req, res) => res.writeHead(200).end('a'.repeat(5_000) + 'QUOTA'));
    const sent = await sendAndClassify({ method: 'GET', url: s.url, timeoutMs: 2_000, dispatcher: agent, maxBodyBytes: 1_024, rules: { errorMatch: /QUOTA/ } });
    const res = expectKind(sent, 'response');
    expect(res.truncated).toBe(true);
    expect(res.body).toBe('a'.repeat(1_024));
    expect(res).toMatchObject({ outcome: 'ok', status: 200 });
  });

  it('reports cancellation through the signal as aborted', async () => {
    const s = await serve(() => undefined);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const sent = await sendAndClassify({ method: 'GET', url: s.url, timeoutMs: 5_000, dispatcher: agent, signal: ac.signal });
    expect(sent).toMatchObject({ kind: 'transport', outcome: 'retry', reason: 'aborted', error: { kind: 'aborted' } });
    expect(sent.latencyMs).toBeLessThan(4_000);
  });
});

describe('buildAndSend', () => {
  it('renders the templates, sends, and uses the spec timeout', async () => {
    const s = await serve(() => undefined);
    const sent = await buildAndSend(
      { url: `${s.url}/send`, method: 'POST', encoding: 'form', body: { to: '{to}' }, timeoutMs: 250 },
      { to: '+48 601&x=1' },
      { dispatcher: agent },
    );
    expect(sent).toMatchObject({ kind: 'transport', reason: 'timeout' });
    expect(s.seen).toHaveLength(1);
    expect(new URLSearchParams(s.seen[0]!.body).getAll('to')).toEqual(['+48 601&x=1']);
  });

  it('returns a request that cannot be built as our own failure, and sends nothing', async () => {
    const s = await serve((_req, res) => res.end('ok'));
    const sent = await buildAndSend(
      { url: s.url, method: 'POST', encoding: 'xml', body: { 'not valid': 'x' }, timeoutMs: 1_000 },
      {},
      { dispatcher: agent },
    );
    const thrown = expectKind(sent, 'thrown');
    expect(thrown).toMatchObject({ outcome: 'unexpected', reason: 'exception' });
    expect(thrown.message).toMatch(/not a valid XML element name/);
    expect(s.seen).toHaveLength(0);
  });
});
