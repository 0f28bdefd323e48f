// The tests' and the benchmark's stand-in (with failure modes); the demo has a small one of its own
// (src/demo/sms-provider.ts), so nothing with failure switches ships in dist/.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { answer, clientGone, startStandInServer } from './server.js';

/**
 * A local stand-in for the seed 000 provider (AOSSMS 絶対リーチ! "MT send", POST /p1/api/mt.json,
 * form fields token, clientId, smsCode, message, phoneNumber).
 *
 * The answer shape is modelled, not copied: the public API reference (doc.aossms.com) could not
 * be read in full, so we answer a JSON object with a numeric `responseCode` (200 success, 300 the
 * plan's sending quota is used up, as the seed documents) and a `responseMessage`, echoing the
 * phone number as such APIs commonly do. Quota comes back with HTTP 200 because the seed detects
 * it with a body pattern; authentication and parameter errors come back with HTTP 401/400.
 *
 * Delivery semantics modelled here: a message counts as DELIVERED when the stand-in finished
 * writing a success answer to a client that was still connected. A request whose client went away
 * before the answer was written (timeout, crash) is NOT delivered: the real service may well have
 * sent it, which is exactly the ambiguity the outbox's retry-after-timeout accepts; tests that
 * need the other reading can inspect `requests`.
 */

export const MT_PATH = '/p1/api/mt.json';
export const REQUIRED_FIELDS = ['token', 'clientId', 'smsCode', 'message', 'phoneNumber'] as const;

export type Behaviour =
  | { kind: 'ok' }
  | { kind: 'quota300' }
  | { kind: 'http500' }
  | { kind: 'http429'; retryAfterSeconds?: number }
  | { kind: 'malformed' }
  /** Waits, then behaves as `then` (default ok) if the client is still there. */
  | { kind: 'slow'; ms: number; then?: Behaviour }
  /** Holds the request until release() (then behaves as `then`, default ok) or close(). */
  | { kind: 'hang'; then?: Behaviour };

export const ok: Behaviour = { kind: 'ok' };
export const quota300: Behaviour = { kind: 'quota300' };
export const http500: Behaviour = { kind: 'http500' };
export const http429 = (retryAfterSeconds?: number): Behaviour => ({ kind: 'http429', retryAfterSeconds });
export const malformed: Behaviour = { kind: 'malformed' };
export const slow = (ms: number, then?: Behaviour): Behaviour => ({ kind: 'slow', ms, then });
export const hang = (then?: Behaviour): Behaviour => ({ kind: 'hang', then });

export interface RecordedRequest {
  at: number;
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  raw: Buffer;
  fields: Record<string, string>;
  /** Which TCP connection carried it (1-based, in accept order): shows connection reuse. */
  connection: number;
  /** What the stand-in answered; undefined while pending or when the client left first. */
  answered?: { status: number; body: string };
}

export interface Delivered {
  at: number;
  phoneNumber: string;
  message: string;
  request: RecordedRequest;
}

export interface Credentials {
  token: string;
  clientId: string;
  smsCode: string;
}

export interface AossmsStandIn {
  /** Base URL, e.g. http://127.0.0.1:PORT */
  readonly url: string;
  /** The MT endpoint URL to configure the provider with. */
  readonly endpoint: string;
  readonly credentials: Credentials;
  readonly requests: readonly RecordedRequest[];
  readonly delivered: readonly Delivered[];
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** Behaviours for the next requests, in order; after them, the default applies. */
  enqueue(...behaviours: Behaviour[]): void;
  /** What requests get once the queue is empty (initially ok). */
  setDefault(behaviour: Behaviour): void;
  /**
   * Picks a request's behaviour before the queue and the default (undefined: those apply), e.g.
   * by the query string that tells two instances' requests apart.
   */
  route(pick: ((r: RecordedRequest) => Behaviour | undefined) | undefined): void;
  /** Lets every hanging request go on with its `then` behaviour. */
  release(): void;
  /** Resolves once at least n requests arrived. */
  waitForRequests(n: number, timeoutMs?: number): Promise<RecordedRequest[]>;
  close(): Promise<void>;
}

export const DEFAULT_CREDENTIALS: Credentials = { token: 'test-token-0001', clientId: '1234', smsCode: '56789' };

export async function startAossms(credentials: Credentials = DEFAULT_CREDENTIALS): Promise<AossmsStandIn> {
  const requests: RecordedRequest[] = [];
  const delivered: Delivered[] = [];
  const queue: Behaviour[] = [];
  let fallback: Behaviour = ok;
  let picker: ((r: RecordedRequest) => Behaviour | undefined) | undefined;

  const srv = await startStandInServer((req, res, raw) => {
    const recorded: RecordedRequest = {
      at: Date.now(),
      method: req.method ?? '',
      path: req.url ?? '',
      headers: { ...req.headers },
      raw,
      fields: parseForm(req, raw),
      connection: srv.connectionOf(req.socket),
    };
    requests.push(recorded);
    srv.notify();
    void handle(req, res, recorded);
  });

  async function handle(req: IncomingMessage, res: ServerResponse, recorded: RecordedRequest): Promise<void> {
    const invalid = validate(req, recorded, credentials);
    if (invalid) return answer(res, recorded, invalid.status, invalid.body);
    let behaviour = picker?.(recorded) ?? queue.shift() ?? fallback;
    for (;;) {
      if (behaviour.kind === 'slow') {
        await new Promise((r) => setTimeout(r, behaviour.kind === 'slow' ? behaviour.ms : 0));
        behaviour = behaviour.then ?? ok;
        continue;
      }
      if (behaviour.kind === 'hang') {
        await srv.hang(res);
        behaviour = behaviour.then ?? ok;
        continue;
      }
      break;
    }
    if (clientGone(res)) return;
    const phoneNumber = recorded.fields.phoneNumber ?? '';
    switch (behaviour.kind) {
      case 'ok': {
        const body = json({ responseCode: 200, responseMessage: 'Success.', phoneNumber, smsMessage: recorded.fields.message });
        answer(res, recorded, 200, body, () =>
          delivered.push({ at: Date.now(), phoneNumber, message: recorded.fields.message ?? '', request: recorded }),
        );
        return;
      }
      case 'quota300':
        return answer(res, recorded, 200, json({ responseCode: 300, responseMessage: 'The number of messages allowed by the plan has been exceeded.', phoneNumber }));
      case 'http500':
        return answer(res, recorded, 500, json({ responseCode: 500, responseMessage: 'Internal Server Error' }));
      case 'http429':
        if (behaviour.retryAfterSeconds !== undefined) res.setHeader('retry-after', String(behaviour.retryAfterSeconds));
        return answer(res, recorded, 429, json({ responseCode: 429, responseMessage: 'Too Many Requests' }));
      case 'malformed':
        return answer(res, recorded, 200, '{"responseCode":20', undefined, 'application/json');
    }
  }

  return {
    url: srv.url,
    endpoint: srv.url + MT_PATH,
    credentials,
    requests,
    delivered,
    get connections() {
      return srv.connections;
    },
    enqueue: (...b) => void queue.push(...b),
    setDefault: (b) => void (fallback = b),
    route: (pick) => void (picker = pick),
    release: srv.release,
    waitForRequests: (n, timeoutMs = 5_000) =>
      srv.waitUntil(() => requests.length >= n, timeoutMs, () => `stand-in got ${requests.length} of ${n} requests within ${timeoutMs} ms`).then(() => [...requests]),
    close: srv.close,
  };
}

function validate(
  req: IncomingMessage,
  r: RecordedRequest,
  credentials: Credentials,
): { status: number; body: string } | undefined {
  const path = r.path.split('?')[0];
  if (path !== MT_PATH) return { status: 404, body: json({ responseCode: 404, responseMessage: 'Not Found' }) };
  if (r.method !== 'POST') return { status: 405, body: json({ responseCode: 405, responseMessage: 'Method Not Allowed' }) };
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    return { status: 400, body: json({ responseCode: 400, responseMessage: `unsupported content type "${type}"` }) };
  }
  const missing = REQUIRED_FIELDS.filter((f) => !r.fields[f]);
  if (missing.length) return { status: 400, body: json({ responseCode: 400, responseMessage: `missing parameter: ${missing.join(', ')}` }) };
  if (r.fields.token !== credentials.token || r.fields.clientId !== credentials.clientId) {
    return { status: 401, body: json({ responseCode: 401, responseMessage: 'Authentication failed.' }) };
  }
  if (r.fields.smsCode !== credentials.smsCode) {
    return { status: 400, body: json({ responseCode: 400, responseMessage: 'invalid smsCode' }) };
  }
  return undefined;
}

/** Repeated keys would be a smuggling attempt; keeping the first makes that visible in tests. */
function parseForm(req: IncomingMessage, raw: Buffer): Record<string, string> {
  const type = String(req.headers['content-type'] ?? '').toLowerCase();
  if (!type.startsWith('application/x-www-form-urlencoded')) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(raw.toString('utf8'))) if (!(k in out)) out[k] = v;
  return out;
}

function json(v: unknown): string {
  return JSON.stringify(v);
}
