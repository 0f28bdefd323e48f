import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import type { MediaHandler } from '../tts/media.js';

export interface HttpServerOptions {
  host: string;
  port: number;
  log: Logger;
  media: MediaHandler;
  routes: Record<string, (url: URL) => { status: number; body: unknown } | Promise<{ status: number; body: unknown }>>;
}

/** The service's own HTTP endpoint: health, TTS audio for Asterisk, and JSON queries. */
export async function startHttpServer(opts: HttpServerOptions): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const server = createServer(async (req, res) => {
    try {
      if (opts.media(req, res)) return;
      const url = new URL(req.url ?? '/', 'http://localhost');
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

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
