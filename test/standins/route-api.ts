// A stand-in for a customer's routing API (seed 004, Netsantral "Custom Entegrasyon"), for the
// tests and for trying a config without writing the API first.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { XMLParser, XMLValidator } from 'fast-xml-parser';

/**
 * What the seed documents: the PBX sends the call's data by HTTP POST (form), HTTP GET (query),
 * JSON POST or XML POST, and the customer's software answers `{status, result, data, redirect}`.
 * Like a real endpoint, the stand-in reads the request strictly by its declared type and answers
 * 400 when it cannot (a body that does not parse, a type it does not accept), so a PBX that sends
 * the wrong bytes fails a test instead of passing it. Every request is kept with its raw bytes.
 */

export type Method = 'GET' | 'POST';

export interface RouteApiRequest {
  at: number;
  method: string;
  path: string;
  /** The raw query string, without '?'. */
  query: string;
  headers: Record<string, string | string[] | undefined>;
  raw: Buffer;
  /** How the stand-in read it: form, query, json or xml; undefined when it could not. */
  encoding?: 'form' | 'query' | 'json' | 'xml';
  /** The fields as the API sees them (strings). */
  fields: Record<string, string>;
  /** The XML root element name of an XML request. */
  xmlRoot?: string;
  /** What it answered (undefined while pending, or when the connection was dropped). */
  answered?: { status: number; body: string; at: number };
}

export type Reply =
  | { kind: 'json'; body: unknown; status?: number }
  | { kind: 'xml'; body: string; status?: number }
  | { kind: 'raw'; body: string | Buffer; contentType?: string; status?: number }
  | { kind: 'slow'; ms: number; then: Reply }
  /** Drops the connection without an answer. */
  | { kind: 'drop' };

export const json = (body: unknown, status = 200): Reply => ({ kind: 'json', body, status });
export const raw = (body: string | Buffer, contentType?: string, status = 200): Reply => ({ kind: 'raw', body, contentType, status });
export const slow = (ms: number, then: Reply): Reply => ({ kind: 'slow', ms, then });
export const drop: Reply = { kind: 'drop' };
export const http = (status: number, body = ''): Reply => ({ kind: 'raw', body, contentType: 'text/plain', status });

/** The seed's fields as XML child elements of <response>. */
export function xml(fields: Record<string, string>, status = 200): Reply {
  const esc = (v: string) => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const inner = Object.entries(fields).map(([k, v]) => `<${k}>${esc(v)}</${k}>`).join('');
  return { kind: 'xml', body: `<?xml version="1.0" encoding="UTF-8"?><response>${inner}</response>`, status };
}

export interface RouteApiStandIn {
  readonly url: string;
  readonly endpoint: string;
  readonly requests: readonly RouteApiRequest[];
  /** Decides the answer per request; the default answers `{status: 'success', result: 'hangup'}`. */
  respond: (req: RouteApiRequest) => Reply;
  close(): Promise<void>;
}

const xmlParser = new XMLParser({ ignoreAttributes: true, parseTagValue: false, trimValues: false, processEntities: true });

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseForm(text: string): Record<string, string> | string {
  const out: Record<string, string> = {};
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const k = eq < 0 ? pair : pair.slice(0, eq);
    const v = eq < 0 ? '' : pair.slice(eq + 1);
    // What a strict form reader refuses: characters that must have been percent-encoded
    if (/[^A-Za-z0-9%+*._~!'()-]/.test(k) || /[^A-Za-z0-9%+*._~!'(),-]/.test(v)) return `unencoded character in "${pair.slice(0, 40)}"`;
    try {
      out[decodeURIComponent(k.replace(/\+/g, ' '))] = decodeURIComponent(v.replace(/\+/g, ' '));
    } catch {
      return `bad percent-encoding in "${pair.slice(0, 40)}"`;
    }
  }
  return out;
}

function parseRequest(r: RouteApiRequest): string | undefined {
  const type = String(r.headers['content-type'] ?? '').toLowerCase();
  if (r.method === 'GET') {
    if (r.raw.length) return 'a GET request with a body';
    const f = parseForm(r.query);
    if (typeof f === 'string') return f;
    r.encoding = 'query';
    r.fields = f;
    return undefined;
  }
  if (r.method !== 'POST') return `method ${r.method} not allowed`;
  const text = r.raw.toString('utf8');
  if (Buffer.compare(Buffer.from(text, 'utf8'), r.raw) !== 0) return 'the body is not UTF-8';
  if (type.startsWith('application/x-www-form-urlencoded')) {
    const f = parseForm(text);
    if (typeof f === 'string') return f;
    r.encoding = 'form';
    r.fields = f;
    return undefined;
  }
  if (type.startsWith('application/json')) {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      return `invalid JSON: ${(e as Error).message}`;
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) return 'the JSON body is not an object';
    const fields: Record<string, string> = {};
    for (const [k, val] of Object.entries(v)) {
      if (typeof val !== 'string') return `field ${k} is not a string`;
      fields[k] = val;
    }
    r.encoding = 'json';
    r.fields = fields;
    return undefined;
  }
  if (type.startsWith('application/xml') || type.startsWith('text/xml')) {
    const valid = XMLValidator.validate(text);
    if (valid !== true) return `invalid XML: ${valid.err.msg}`;
    const doc = xmlParser.parse(text) as Record<string, unknown>;
    const roots = Object.keys(doc).filter((k) => k !== '?xml');
    if (roots.length !== 1) return 'not one root element';
    const root = doc[roots[0]!];
    const fields: Record<string, string> = {};
    if (root && typeof root === 'object') {
      for (const [k, val] of Object.entries(root)) {
        if (typeof val !== 'string') return `element ${k} is not text`;
        fields[k] = val;
      }
    }
    r.encoding = 'xml';
    r.xmlRoot = roots[0];
    r.fields = fields;
    return undefined;
  }
  return `content type "${type}" not accepted`;
}

/** `paths`: the URL paths it serves (404 elsewhere); by default any path, so one stand-in plays several integrations. */
export async function startRouteApi(opts: { paths?: string[] } = {}): Promise<RouteApiStandIn> {
  const requests: RouteApiRequest[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const send = (res: ServerResponse, r: RouteApiRequest, reply: Reply) => {
    if (res.destroyed) return;
    switch (reply.kind) {
      case 'drop':
        res.socket?.destroy();
        return;
      case 'slow': {
        const t = setTimeout(() => {
          timers.delete(t);
          send(res, r, reply.then);
        }, reply.ms);
        timers.add(t);
        return;
      }
      default: {
        const status = reply.status ?? 200;
        const body = reply.kind === 'json' ? JSON.stringify(reply.body) : reply.body;
        const type = reply.kind === 'json' ? 'application/json; charset=utf-8' : reply.kind === 'xml' ? 'application/xml; charset=utf-8' : reply.contentType;
        const headers: Record<string, string | number> = { 'content-length': Buffer.byteLength(body) };
        if (type) headers['content-type'] = type;
        res.writeHead(status, headers);
        res.end(body, () => {
          r.answered = { status, body: body.toString(), at: Date.now() };
        });
      }
    }
  };

  const stand: RouteApiStandIn = {
    url: '',
    endpoint: '',
    requests,
    respond: () => json({ status: 'success', result: 'hangup' }),
    async close() {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const server: Server = createServer(async (req, res) => {
    const raw = await readBody(req);
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const r: RouteApiRequest = {
      at: Date.now(),
      method: req.method ?? '',
      path: q < 0 ? url : url.slice(0, q),
      query: q < 0 ? '' : url.slice(q + 1),
      headers: req.headers,
      raw,
      fields: {},
    };
    requests.push(r);
    if (opts.paths && !opts.paths.includes(r.path)) return send(res, r, json({ status: 'error', message: 'not found' }, 404));
    const problem = parseRequest(r);
    if (problem) return send(res, r, json({ status: 'error', message: problem }, 400));
    let reply: Reply;
    try {
      reply = stand.respond(r);
    } catch (e) {
      reply = http(500, String(e));
    }
    send(res, r, reply);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  Object.assign(stand, { url: `http://127.0.0.1:${port}`, endpoint: `http://127.0.0.1:${port}${opts.paths?.[0] ?? '/route'}` });
  return stand;
}
