import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { SESSION_COOKIE, type AdminAuth, type Caller } from '../admin/auth.js';
import type { PublicFile } from '../admin/console-files.js';
import { maskForViewer } from '../admin/mask.js';
import type { Action, ProviderRoute, Route, RouteAnswer } from '../calls/feature.js';
import type { Logger } from '../log.js';
import type { AuditLog } from '../store/audit.js';
import type { MediaHandler } from '../tts/media.js';
import type { Listener } from './http-config.js';

/**
 * The service's HTTP listeners. A media listener serves `/media/…` and nothing else; an admin
 * listener serves the API (GET routes, POST actions), the console and /metrics, behind the
 * tokens, the Host allow-list and the cross-site checks of admin/auth.ts. One listener may be
 * both (see app/http-config.ts).
 *
 * Every answer to bad input is a 4xx with a message: a path that does not start with exactly one
 * `/`, an unknown endpoint, a query or body a route cannot read (RangeError).
 */


/** A long-lived answer (Server-Sent Events); it owns `res` from then on. */
export type Stream = (req: IncomingMessage, res: ServerResponse, caller: Caller) => void;

export interface HttpServerOptions {
  listener: Listener;
  log: Logger;
  media: MediaHandler;
  auth: AdminAuth;
  audit: AuditLog;
  routes: Record<string, Route>;
  actions: Record<string, Action>;
  streams?: Record<string, Stream>;
  /** GET paths (not API routes) anyone may load, e.g. the console's HTML, JS and CSS */
  publicFile?: PublicFile;
  /** `/health` without a token: only whether the service is ready, for probes */
  liveness?: () => boolean | Promise<boolean>;
  /** Routes only an admin token may read (the config view) */
  adminOnly?: (path: string) => boolean;
  /** Routes whose answers hold phone numbers: an admin reading them is audited as `reveal`. */
  reveals?: (path: string) => boolean;
  /**
   * PUBLIC provider-facing endpoints (SMS delivery receipts), any method: served by the media
   * listener, the one a provider's servers can reach; each authenticates its own requests.
   */
  providerRoutes?: Record<string, ProviderRoute>;
}

export interface HttpListener {
  server: Server;
  url: string;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 64 * 1024;

export async function startHttpServer(opts: HttpServerOptions): Promise<HttpListener> {
  const { listener, auth } = opts;
  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    try {
      const raw = req.url ?? '/';
      // `//x/sms/history` would be read as host x, path /sms/history: refuse anything but one slash
      if (!raw.startsWith('/') || raw.startsWith('//')) return json(res, 400, { error: 'the request path must start with a single /' });
      if (listener.media && (raw.startsWith('/media/') || raw === '/media')) {
        if (opts.media(req, res)) return;
      }
      const provider = listener.media ? opts.providerRoutes?.[raw.split('?')[0]!] : undefined;
      if (provider) return await fromProvider(req, res, provider);
      if (!listener.admin) return json(res, 404, { error: 'this listener serves only /media/ and providers\' callbacks' });
      if (!auth.hostAllowed(req.headers.host)) return json(res, 421, { error: `Host ${req.headers.host ?? '(none)'} is not one this service answers to (http.allowedHosts)` });
      let url: URL;
      try {
        url = new URL(raw, 'http://localhost');
      } catch {
        return json(res, 400, { error: 'unreadable request path' });
      }
      await admin(req, res, url);
    } catch (e) {
      // a query parameter or body the route could not read
      if (e instanceof RangeError && !res.headersSent) return json(res, 400, { error: e.message });
      opts.log.error({ err: e, path: req.url }, 'HTTP request failed');
      if (!res.headersSent) json(res, 500, { error: 'internal error' });
      else res.destroy();
    }
  };

  async function admin(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const { token, via } = auth.tokenOf(req);
    const caller = auth.caller(token);

    if (path === '/login' && method === 'POST') return login(req, res);
    if (path === '/logout' && method === 'POST') {
      res.setHeader('set-cookie', cookie('', 0));
      return json(res, 200, { ok: true });
    }
    if (path === '/health' && !caller && opts.liveness) {
      const ok = await opts.liveness();
      return json(res, ok ? 200 : 503, { ok });
    }

    const route = opts.routes[path];
    const action = opts.actions[path];
    const stream = opts.streams?.[path];
    if (!route && !action && !stream && path !== '/session') {
      if (method === 'GET' && opts.publicFile) {
        const page = opts.publicFile(path);
        if (page) return send(res, page.status ?? 200, page.type, page.body, { 'cache-control': 'no-cache' });
      }
      return json(res, 404, { error: `no such endpoint: ${path}` });
    }
    if (!caller) return json(res, 401, { error: via === 'none' ? 'a token is required (Authorization: Bearer …)' : 'the token is not valid' });

    if (path === '/session') return json(res, 200, { name: caller.name, role: caller.role, csrf: token ? auth.csrfFor(token) : '', open: auth.open });
    if (action) {
      if (method !== 'POST') return json(res, 405, { error: 'POST only' });
      if (caller.role !== 'admin') return json(res, 403, { error: 'an admin token is required' });
      const problem = auth.crossSiteProblem(req, token, via);
      if (problem) return json(res, 403, { error: problem });
      const body = await readJson(req);
      const target = typeof body.id === 'string' ? body.id : undefined;
      let answer: RouteAnswer;
      try {
        answer = await action({ body, actor: caller.name });
      } catch (e) {
        if (e instanceof RangeError) await opts.audit.record({ actor: caller.name, role: caller.role, action: path, target, detail: `refused: ${e.message}`, remote: req.socket.remoteAddress });
        throw e;
      }
      await opts.audit.record({ actor: caller.name, role: caller.role, action: path, target, detail: String(answer.status), remote: req.socket.remoteAddress });
      opts.log.info({ actor: caller.name, action: path, target, status: answer.status }, 'admin action');
      return json(res, answer.status, answer.body);
    }
    if (method !== 'GET') return json(res, 405, { error: 'GET only' });
    if (caller.role !== 'admin' && opts.adminOnly?.(path)) return json(res, 403, { error: 'an admin token is required' });
    if (stream) return stream(req, res, caller);
    const answer = await route!(url);
    if (answer.contentType) return send(res, answer.status, answer.contentType, String(answer.body));
    if (caller.role === 'viewer') return json(res, answer.status, maskForViewer(answer.body));
    if (!auth.open && opts.reveals?.(path) && answer.status === 200) {
      await opts.audit.record({ actor: caller.name, role: caller.role, action: 'reveal', target: path + url.search, remote: req.socket.remoteAddress });
    }
    return json(res, answer.status, answer.body);
  }

  async function fromProvider(req: IncomingMessage, res: ServerResponse, provider: ProviderRoute): Promise<void> {
    const body = await readBody(req);
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]));
    const answer = await provider({ method: req.method ?? 'GET', url: new URL(req.url ?? '/', 'http://localhost'), headers, body: body.toString('utf8') });
    return json(res, answer.status, answer.body);
  }

  async function login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const problem = auth.crossSiteProblem(req, undefined, 'bearer');
    if (problem) return json(res, 403, { error: problem });
    const body = await readJson(req);
    const token = typeof body.token === 'string' ? body.token : '';
    const caller = auth.open ? undefined : auth.caller(token);
    if (!caller) return json(res, 401, { error: auth.open ? 'no tokens are configured: the console is open on this address' : 'the token is not valid' });
    res.setHeader('set-cookie', cookie(token, 12 * 3600));
    return json(res, 200, { name: caller.name, role: caller.role, csrf: auth.csrfFor(token) });
  }

  const cookie = (value: string, maxAge: number) =>
    `${SESSION_COOKIE}=${encodeURIComponent(value)}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${listener.tls ? '; Secure' : ''}`;

  const server = listener.tls
    ? createHttpsServer({ cert: readFileSync(listener.tls.cert), key: readFileSync(listener.tls.key) }, handler)
    : createServer(handler);
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listener.port, listener.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `${listener.tls ? 'https' : 'http'}://${listener.host.includes(':') ? `[${listener.host}]` : listener.host}:${port}`;
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

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new RangeError(`body: larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const text = (await readBody(req)).toString('utf8');
  if (text.trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new RangeError('body: not JSON');
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new RangeError('body: expected a JSON object');
  return v as Record<string, unknown>;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(body));
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'content-security-policy': "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    ...headers,
  });
  res.end(body);
}

