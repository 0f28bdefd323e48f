import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Client } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { AriConnectionLost } from '../../src/asterisk/ari-ws-rest.js';
import { TimeoutError } from '../../src/asterisk/backoff.js';
import { transportFailure } from '../../src/http/failure.js';
import { sendRequest, TransportError } from '../../src/http/request.js';

/**
 * The transport classifier against the errors undici and Node really give, from a raw TCP server
 * that misbehaves the way a far end or the network does; not against objects shaped by hand.
 */
let server: Server | undefined;
const clients: Client[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.destroy()));
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

async function listen(onSocket: (s: Socket) => void): Promise<string> {
  const sockets = new Set<Socket>();
  server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.once('close', () => sockets.delete(s));
    onSocket(s);
  });
  const close = server.close.bind(server);
  server.close = ((cb?: (err?: Error) => void) => {
    for (const s of sockets) s.destroy();
    return close(cb);
  }) as Server['close'];
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** What one GET through undici fails with. */
async function failureOf(origin: string, timeouts: { headersTimeout?: number; bodyTimeout?: number } = {}): Promise<unknown> {
  const client = new Client(origin, timeouts);
  clients.push(client);
  try {
    const res = await client.request({ method: 'GET', path: '/' });
    await res.body.text();
  } catch (e) {
    return e;
  }
  throw new Error('the request succeeded');
}

const afterRequest = (s: Socket, then: () => void) => s.once('data', then);

describe('transportFailure on real errors', () => {
  it('a reset after the request was sent: connection-lost', async () => {
    const url = await listen((s) => afterRequest(s, () => s.resetAndDestroy()));
    const e = (await failureOf(url)) as { code?: string };
    expect(e.code).toBe('ECONNRESET');
    expect(transportFailure(e)).toBe('connection-lost');
  });

  it('a socket closed without an answer: connection-lost', async () => {
    const url = await listen((s) => afterRequest(s, () => s.end()));
    const e = (await failureOf(url)) as { code?: string };
    expect(e.code).toBe('UND_ERR_SOCKET');
    expect(transportFailure(e)).toBe('connection-lost');
  });

  it('a request on a closing client: connection-lost', async () => {
    const url = await listen(() => undefined);
    const client = new Client(url);
    const closing = client.close();
    const e = await client.request({ method: 'GET', path: '/' }).catch((err: unknown) => err);
    await closing;
    expect((e as { code?: string }).code).toBe('UND_ERR_CLOSED');
    expect(transportFailure(e)).toBe('connection-lost');
  });

  it('no answer headers in time: timeout', async () => {
    const url = await listen(() => undefined);
    const e = (await failureOf(url, { headersTimeout: 100 })) as { code?: string };
    expect(e.code).toBe('UND_ERR_HEADERS_TIMEOUT');
    expect(transportFailure(e)).toBe('timeout');
  });

  it('a body that stops coming: timeout', async () => {
    const url = await listen((s) => afterRequest(s, () => s.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nabc')));
    const e = (await failureOf(url, { bodyTimeout: 100 })) as { code?: string };
    expect(e.code).toBe('UND_ERR_BODY_TIMEOUT');
    expect(transportFailure(e)).toBe('timeout');
  });

  it('nobody listening: connect', async () => {
    const url = await listen(() => undefined);
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = undefined;
    const e = (await failureOf(url)) as { code?: string };
    expect(e.code).toBe('ECONNREFUSED');
    expect(transportFailure(e)).toBe('connect');
    // fetch() wraps the socket's error in a TypeError; the code is read from its cause
    const fetched = await fetch(url).catch((err: unknown) => err);
    expect(fetched).toBeInstanceOf(TypeError);
    expect(transportFailure(fetched)).toBe('connect');
  });

  it('our own deadlines: timeout', () => {
    expect(transportFailure(new TimeoutError('ARI GET /channels timed out after 1000 ms'))).toBe('timeout');
    let e: unknown;
    try {
      AbortSignal.abort(new DOMException('deadline', 'TimeoutError')).throwIfAborted();
    } catch (err) {
      e = err;
    }
    expect(transportFailure(e)).toBe('timeout');
  });

  it('the ARI WebSocket gone under a request: connection-lost', () => {
    expect(transportFailure(new AriConnectionLost('ARI POST /channels/1/continue: the WebSocket closed before the answer came'))).toBe('connection-lost');
  });

  it('anything else is none of them', () => {
    expect(transportFailure(new Error('boom'))).toBeUndefined();
    expect(transportFailure(Object.assign(new Error('no such file'), { code: 'ENOENT' }))).toBeUndefined();
    expect(transportFailure(new DOMException('the call left the stage', 'AbortError'))).toBeUndefined();
    expect(transportFailure(undefined)).toBeUndefined();
    expect(transportFailure('ECONNRESET')).toBeUndefined();
  });
});

describe('sendRequest reports through the same lists', () => {
  it('a reset is other (the request may have been processed), a refusal connect', async () => {
    const url = await listen((s) => afterRequest(s, () => s.resetAndDestroy()));
    const built = { method: 'GET' as const, url: `${url}/`, headers: {}, missing: [] };
    const dispatchers = [new Client(url), new Client(url)];
    clients.push(...dispatchers);
    const reset = await sendRequest(built, { timeoutMs: 5000, dispatcher: dispatchers[0] }).catch((e: unknown) => e);
    expect(reset).toBeInstanceOf(TransportError);
    expect((reset as TransportError).kind).toBe('other');
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = undefined;
    const refused = await sendRequest(built, { timeoutMs: 5000, dispatcher: dispatchers[1] }).catch((e: unknown) => e);
    expect((refused as TransportError).kind).toBe('connect');
  });
});
