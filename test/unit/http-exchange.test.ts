import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { exchange } from '../../src/http/exchange.js';

/**
 * exchange(): one request over an undici dispatcher, its answer read whole, without undici's
 * request() and its stream. What the ARI port and every outbound request rely on.
 */

let server: Server | undefined;
let pool: Pool | undefined;
afterEach(async () => {
  await pool?.destroy();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  pool = server = undefined;
});

async function serve(fn: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ origin: string; seen: string[] }> {
  const seen: string[] = [];
  server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    fn(req, res);
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

const timeoutError = () => Object.assign(new Error('deadline'), { name: 'TimeoutError' });

describe('exchange', () => {
  it('sends the method, path, headers and body, and reads status, headers and UTF-8 text', async () => {
    const { origin } = await serve((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => res.writeHead(201, { 'x-got': `${req.headers.authorization} ${body}` }).end('ok ✓'));
    });
    pool = new Pool(origin);
    const r = await exchange(pool, { method: 'POST', origin, path: '/a?b=1', headers: { authorization: 'Basic x' }, body: 'hi' }, { timeoutMs: 2000, timeoutError });
    expect(r).toMatchObject({ status: 201, text: 'ok ✓', truncated: false });
    expect(r.headers['x-got']).toBe('Basic x hi');
  });

  it('the deadline counts the wait for a free connection, and a request abandoned there is never sent', async () => {
    const { origin, seen } = await serve((req, res) => {
      if (req.url === '/slow') setTimeout(() => res.end('late'), 600);
      else res.end('quick');
    });
    pool = new Pool(origin, { connections: 1 });
    const slow = exchange(pool, { method: 'GET', origin, path: '/slow' }, { timeoutMs: 2000, timeoutError });
    const t0 = Date.now();
    await expect(exchange(pool, { method: 'GET', origin, path: '/queued' }, { timeoutMs: 150, timeoutError })).rejects.toThrow('deadline');
    expect(Date.now() - t0).toBeLessThan(550);
    expect((await slow).text).toBe('late');
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toEqual(['GET /slow']);
  });

  it('keeps at most maxBodyBytes and drops the connection rather than read the rest; a cancel rejects with its reason', async () => {
    const { origin } = await serve((_req, res) => {
      res.write('x'.repeat(1000));
      // never ends: only a dropped connection lets the exchange finish
    });
    pool = new Pool(origin);
    const r = await exchange(pool, { method: 'GET', origin, path: '/' }, { timeoutMs: 2000, timeoutError, maxBodyBytes: 10 });
    expect(r).toMatchObject({ status: 200, text: 'x'.repeat(10), truncated: true });
    const stop = new AbortController();
    const cancelled = exchange(pool, { method: 'GET', origin, path: '/' }, { timeoutMs: 2000, timeoutError, signal: stop.signal });
    setTimeout(() => stop.abort(new Error('shutting down')), 50);
    await expect(cancelled).rejects.toThrow('shutting down');
  });
});
