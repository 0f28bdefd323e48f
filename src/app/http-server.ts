import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ProviderRoute } from '../calls/feature.js';
import type { Logger } from '../log.js';
import type { MediaHandler } from '../tts/media.js';

export interface HttpServerOptions {
  host: string;
  port: number;
  log: Logger;
  media: MediaHandler;
  routes: Record<string, (url: URL) => { status: number; body: unknown } | Promise<{ status: number; body: unknown }>>;
  /** Endpoints that take a JSON body by POST. */
  posts?: Record<string, (body: unknown, url: URL) => { status: number; body: unknown } | Promise<{ status: number; body: unknown }>>;
  /** Provider-facing (public) endpoints: any method, with the request's body. */
  providerRoutes?: Record<string, ProviderRoute>;
}

/** A POST or provider body larger than this is refused (413): each is a few fields. */
const MAX_BODY = 64 * 1024;

/** The service's own HTTP endpoint: health, TTS audio for Asterisk, and JSON queries. */
export async function startHttpServer(opts: HttpServerOptions): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const server = createServer(async (req, res) => {
    try {
      if (opts.media(req, res)) return;
      const url = new URL(req.url ?? '/', 'http://localhost');
      const provider = opts.providerRoutes?.[url.pathname];
      if (provider) {
        const body = await readBody(req);
        if (body === undefined) return json(res, 413, { error: `body larger than ${MAX_BODY} bytes` });
        const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]));
        const answer = await provider({ method: req.method ?? 'GET', url, headers, body: body.toString('utf8') });
        return json(res, answer.status, answer.body);
      }
      const post = opts.posts?.[url.pathname];
      if (post) {
        if (req.method !== 'POST') return json(res, 405, { error: 'POST only' });
        const raw = await readBody(req);
        if (raw === undefined) return json(res, 413, { error: `body larger than ${MAX_BODY} bytes` });
        let body: unknown;
        try {
          body = JSON.parse(raw.toString('utf8'));
        } catch {
          return json(res, 400, { error: 'the body is not JSON' });
        }
        const answer = await post(body, url);
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

/** The request body, or undefined past MAX_BODY. */
async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
