import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { ProviderRoute } from '../calls/feature.js';
import type { Logger } from '../log.js';
import type { MediaHandler } from '../tts/media.js';

export interface HttpServerOptions {
  host: string;
  port: number;
  log: Logger;
  media: MediaHandler;
  routes: Record<string, (url: URL) => { status: number; body: unknown } | Promise<{ status: number; body: unknown }>>;
  /** Provider-facing (public) endpoints: any method, with the request's body. */
  providerRoutes?: Record<string, ProviderRoute>;
}

/** A provider's callback is a small form or JSON document; anything bigger is refused. */
const MAX_PROVIDER_BODY = 64 * 1024;

/** The service's own HTTP endpoint: health, TTS audio for Asterisk, and JSON queries. */
export async function startHttpServer(opts: HttpServerOptions): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const server = createServer(async (req, res) => {
    try {
      if (opts.media(req, res)) return;
      const url = new URL(req.url ?? '/', 'http://localhost');
      const provider = opts.providerRoutes?.[url.pathname];
      if (provider) {
        const body = await readBody(req, MAX_PROVIDER_BODY);
        if (body === undefined) return json(res, 413, { error: `body larger than ${MAX_PROVIDER_BODY} bytes` });
        const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]));
        const answer = await provider({ method: req.method ?? 'GET', url, headers, body });
        return json(res, answer.status, answer.body);
      }
      const route = opts.routes[url.pathname];
      if (!route) return json(res, 404, { error: `no such endpoint: ${url.pathname}` });
      if (req.method !== 'GET') return json(res, 405, { error: 'GET only' });
      const { status, body } = await route(url);
      json(res, status, body);
    } catch (e) {
      // a query parameter the route could not read
      if (e instanceof RangeError && !res.headersSent) return json(res, 400, { error: e.message });
      opts.log.error({ err: e, path: req.url }, 'HTTP request failed');
      if (!res.headersSent) json(res, 500, { error: 'internal error' });
      else res.destroy();
    }
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`;
  return {
    server,
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The body as text, or undefined once it passes `max` bytes. */
async function readBody(req: IncomingMessage, max: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
