import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

/**
 * A stand-in for Asterisk's ARI that answers the same REST requests over HTTP and, as Asterisk
 * 20.14.0 / 21.9.0 / 22.4.0 and later do, over the event WebSocket ("ARI REST over WebSocket",
 * docs.asterisk.org; res/ari/ari_websocket_requests.c): a RESTRequest message in, a RESTResponse
 * event out on the same socket, with `transaction_id` and `request_id` echoed ("" when absent),
 * `status_code`, `reason_phrase`, `uri` without its query string, and `content_type` +
 * `message_body` only when there is a body. The query string of `uri` is form-decoded; a JSON
 * `message_body` needs `content_type: application/json`. Like Asterisk it sends the answer through
 * the application's event filter (an answer whose type the allowed list lacks is dropped), and
 * answers a message that is not JSON with a 400 whose request_id is "".
 *
 * `rest: false` plays an older Asterisk: it reads what the client sends and ignores it.
 */
export interface Answer {
  status: number;
  reason: string;
  /** JSON text of the body; undefined: none (204) */
  body?: string;
}

export interface Sent {
  method: string;
  /** path below /ari, without leading slash or query */
  path: string;
  query: Record<string, string>;
  body?: unknown;
}

export interface WsPbx {
  url: string;
  /** requests that came over HTTP, as "METHOD /path" (below /ari, no query) */
  readonly http: string[];
  /** RESTRequests that came over the WebSocket, as "METHOD /path" */
  readonly ws: string[];
  /** every message the WebSockets got, as sent (an older Asterisk gets them too, and ignores them) */
  readonly received: string[];
  /** every request, either way, parsed */
  readonly sent: Sent[];
  /** the n-th WebSocket the port opened (0: the first) */
  socket(n?: number): Promise<WebSocket>;
  /** WebSocket answers to requests whose "METHOD /path" is in here are held until release() */
  hold: Set<string>;
  release(): void;
  close(): Promise<void>;
}

const ASTERISK_ID = '02:fc:00:00:00:01';

export async function startWsPbx(opts: { rest: boolean; app: string; answer?: (req: Sent) => Answer | undefined }): Promise<WsPbx> {
  const http: string[] = [];
  const ws: string[] = [];
  const received: string[] = [];
  const sent: Sent[] = [];
  let allowed: string[] = [];
  const held: Array<() => void> = [];
  const hold = new Set<string>();

  const handle = (req: Sent): Answer => {
    sent.push(req);
    const custom = opts.answer?.(req);
    if (custom) return custom;
    if (req.method === 'PUT' && req.path === `applications/${opts.app}/eventFilter`) {
      allowed = ((req.body as { allowed?: Array<{ type: string }> })?.allowed ?? []).map((e) => e.type);
      return { status: 200, reason: 'OK', body: JSON.stringify({ name: opts.app, events_allowed: allowed.map((type) => ({ type })), events_disallowed: [] }) };
    }
    if (req.method === 'GET' && req.path === 'asterisk/ping') return { status: 200, reason: 'OK', body: JSON.stringify({ ping: 'pong', timestamp: new Date().toISOString(), asterisk_id: ASTERISK_ID }) };
    if (req.method === 'GET' && req.path === 'channels') return { status: 200, reason: 'OK', body: '[]' };
    return { status: 404, reason: 'Not Found', body: JSON.stringify({ message: 'Resource not found' }) };
  };

  const wss = new WebSocketServer({ noServer: true });
  const sockets: Array<{ ws: Promise<WebSocket>; resolve: (ws: WebSocket) => void }> = [];
  const slot = (n: number) => {
    while (sockets.length <= n) {
      let resolve!: (ws: WebSocket) => void;
      const p = new Promise<WebSocket>((r) => (resolve = r));
      sockets.push({ ws: p, resolve });
    }
    return sockets[n]!;
  };
  let opened = 0;

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const path = url.pathname.replace(/^\/ari\//, '');
      const text = Buffer.concat(chunks).toString('utf8');
      http.push(`${req.method} /${path}`);
      const a = handle({ method: req.method ?? 'GET', path, query: Object.fromEntries(url.searchParams), ...(text ? { body: JSON.parse(text) } : {}) });
      res.writeHead(a.status, a.reason, a.body === undefined ? {} : { 'content-type': 'application/json' });
      res.end(a.body);
    });
  });

  const onMessage = (socket: WebSocket, data: Buffer) => {
    const send = (msg: Record<string, unknown>) => {
      // Asterisk sends a RESTResponse through the application's event filter like any event
      if (allowed.length && !allowed.includes(String(msg.type))) return;
      socket.send(JSON.stringify({ ...msg, timestamp: new Date().toISOString(), asterisk_id: ASTERISK_ID, application: opts.app }));
    };
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
    } catch {
      return send({ type: 'RESTResponse', transaction_id: '', request_id: '', status_code: 400, reason_phrase: 'Failed to parse request message JSON', uri: '' });
    }
    const str = (k: string) => (typeof m[k] === 'string' ? (m[k] as string) : '');
    const [path = '', qs] = str('uri').split('?', 2) as [string, string | undefined];
    const echo = { type: 'RESTResponse', transaction_id: str('transaction_id'), request_id: str('request_id'), uri: path };
    const refuse = (why: string) => send({ ...echo, status_code: 400, reason_phrase: 'Bad request', content_type: 'application/json', message_body: JSON.stringify({ message: why }) });
    if (str('type') !== 'RESTRequest') return refuse('Unknown request type.');
    if (!path) return refuse("Empty or missing 'uri' property.");
    if (!['GET', 'POST', 'PUT', 'DELETE'].includes(str('method'))) return refuse("Unknown or missing 'method' property.");
    let body: unknown;
    if (str('message_body')) {
      if (str('content_type') !== 'application/json') return refuse("No 'content_type' for 'message_body'.");
      body = JSON.parse(str('message_body'));
    }
    const decodedPath = path.split('/').map(decodeURIComponent).join('/');
    ws.push(`${str('method')} /${decodedPath}`);
    const a = handle({ method: str('method'), path: decodedPath, query: Object.fromEntries(new URLSearchParams(qs ?? '')), ...(body === undefined ? {} : { body }) });
    const answer = () =>
      send({ ...echo, status_code: a.status, reason_phrase: a.reason, ...(a.body === undefined ? {} : { content_type: 'application/json', message_body: a.body }) });
    if (hold.has(`${str('method')} /${decodedPath}`)) held.push(answer);
    else answer();
  };

  server.on('upgrade', (req, sock, head) =>
    wss.handleUpgrade(req, sock, head, (socket) => {
      socket.on('error', () => undefined);
      socket.on('message', (data: Buffer) => {
        received.push(data.toString('utf8'));
        // an older Asterisk reads what the client sends and ignores it
        if (opts.rest) onMessage(socket, data);
      });
      slot(opened++).resolve(socket);
    }),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    http,
    ws,
    received,
    sent,
    socket: (n = 0) => slot(n).ws,
    hold,
    release() {
      for (const a of held.splice(0)) a();
    },
    async close() {
      for (const c of wss.clients) c.terminate();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
