import type { IncomingMessage } from 'node:http';
import { startStandInServer } from '../standins/server.js';
import { parseXml, type XmlElement } from './xml.js';

/**
 * A customer's HTTP endpoint as hooks meet it (a CRM, a ticketing API): it reads the body by its
 * Content-Type and refuses, with 400, a body that does not parse as what it claims to be — a form
 * with a repeated field (a smuggled one), JSON that is not JSON, XML that is not well-formed — and
 * a request to a path nobody configured with 404. Tests script the answers per path.
 */

export type Parsed =
  | { kind: 'form'; fields: Record<string, string> }
  | { kind: 'json'; value: unknown }
  | { kind: 'xml'; root: XmlElement }
  | { kind: 'none' };

export interface ReceivedRequest {
  at: number;
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Record<string, string>;
  raw: string;
  parsed: Parsed;
  /** Why the body was refused, if it was. */
  invalid?: string;
  answered?: { status: number; body: string };
}

export interface Answer {
  status?: number;
  body?: string;
  headers?: Record<string, string>;
  /** Wait this long before answering (a slow endpoint). */
  delayMs?: number;
}

export interface HookReceiver {
  readonly url: string;
  readonly requests: ReceivedRequest[];
  /** Answers for the next requests to this path, in order; after them the path's default. */
  enqueue(path: string, ...answers: Answer[]): void;
  /** The answer for a path once its queue is empty (default: 200 {"ok":true}). */
  setDefault(path: string, answer: Answer | ((req: ReceivedRequest) => Answer)): void;
  to(path: string): ReceivedRequest[];
  waitFor(path: string, n: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  close(): Promise<void>;
}

export async function startHookReceiver(): Promise<HookReceiver> {
  const requests: ReceivedRequest[] = [];
  const queues = new Map<string, Answer[]>();
  const defaults = new Map<string, Answer | ((req: ReceivedRequest) => Answer)>();

  const srv = await startStandInServer((req, res, data) => {
    const url = new URL(req.url ?? '/', 'http://receiver');
    const raw = data.toString('utf8');
    const r: ReceivedRequest = {
      at: Date.now(),
      method: req.method ?? '',
      path: url.pathname,
      query: url.searchParams,
      headers: flat(req),
      raw,
      parsed: { kind: 'none' },
    };
    try {
      r.parsed = parseBody(r.headers['content-type'] ?? '', raw);
    } catch (e) {
      r.invalid = (e as Error).message;
    }
    requests.push(r);
    srv.notify();

    const configured = queues.has(r.path) || defaults.has(r.path);
    let answer: Answer;
    if (r.invalid) answer = { status: 400, body: JSON.stringify({ error: r.invalid }) };
    else if (!configured) answer = { status: 404, body: JSON.stringify({ error: `no endpoint ${r.path}` }) };
    else {
      const queued = queues.get(r.path)?.shift();
      const d = defaults.get(r.path);
      answer = queued ?? (typeof d === 'function' ? d(r) : d) ?? { status: 200, body: '{"ok":true}' };
    }
    const send = () => {
      if (res.destroyed) return;
      const body = answer.body ?? '';
      res.writeHead(answer.status ?? 200, { 'content-type': 'application/json; charset=utf-8', ...answer.headers });
      res.end(body, () => (r.answered = { status: answer.status ?? 200, body }));
    };
    if (answer.delayMs) setTimeout(send, answer.delayMs);
    else send();
  });

  return {
    url: srv.url,
    requests,
    enqueue(path, ...answers) {
      const q = queues.get(path) ?? [];
      q.push(...answers);
      queues.set(path, q);
    },
    setDefault: (path, answer) => void defaults.set(path, answer),
    to: (path) => requests.filter((r) => r.path === path),
    waitFor(path, n, timeoutMs = 10_000) {
      const have = () => requests.filter((r) => r.path === path);
      return srv.waitUntil(() => have().length >= n, timeoutMs, () => `receiver got ${have().length} of ${n} requests to ${path} within ${timeoutMs} ms`).then(have);
    },
    close: srv.close,
  };
}

function flat(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

function parseBody(contentType: string, raw: string): Parsed {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  if (type === 'application/x-www-form-urlencoded') {
    const fields: Record<string, string> = {};
    for (const [k, v] of new URLSearchParams(raw)) {
      if (k in fields) throw new Error(`form field "${k}" given twice`);
      fields[k] = v;
    }
    return { kind: 'form', fields };
  }
  if (type === 'application/json' || type.endsWith('+json')) return { kind: 'json', value: JSON.parse(raw) as unknown };
  if (type === 'application/xml' || type === 'text/xml' || type.endsWith('+xml')) return { kind: 'xml', root: parseXml(raw) };
  if (raw === '') return { kind: 'none' };
  throw new Error(`unsupported content type "${type}"`);
}
