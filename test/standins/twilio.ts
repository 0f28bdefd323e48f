// Shipped with the service (not only the tests) so a demo can show the Twilio provider at work
// without an account.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { answer, startStandInServer } from './server.js';

/**
 * A local stand-in for Twilio's Messages resource (POST /2010-04-01/Accounts/{AccountSid}/Messages.json),
 * following the documented contract:
 *
 * - HTTP Basic auth, Account SID as user and Auth Token as password; otherwise 401 with code 20003
 *   ("Authenticate") and a WWW-Authenticate challenge.
 * - form fields To, Body, From and/or MessagingServiceSid. Missing To: 400 / 21604; To that is not a
 *   valid E.164 number: 400 / 21211; neither From nor MessagingServiceSid: 400 / 21603; no Body:
 *   400 / 21602; a Body over 1,600 characters: 400 / 21617; a StatusCallback that is not an http(s)
 *   URL: 400 / 21609 (a valid one is where Twilio posts the message's status changes).
 * - success: 201 with the Message resource (sid "SM" + 32 hex digits, status "queued", the RFC 2822
 *   dates, uri, subresource_uris…).
 * - every error body is `{code, message, more_info, status}`.
 * - programmable failures: 429 / 20429 (optionally with Retry-After), 500 / 20500, any 4xx code,
 *   slow answers and hanging requests, for the retry tests.
 *
 * As with the seed 000 stand-in, a message counts as delivered only when the 201 was written to a
 * client that was still connected.
 */

export type TwilioBehaviour =
  | { kind: 'ok' }
  | { kind: 'http429'; retryAfterSeconds?: number }
  | { kind: 'http500' }
  | { kind: 'error'; status: number; code: number; message: string }
  | { kind: 'slow'; ms: number; then?: TwilioBehaviour }
  | { kind: 'hang'; then?: TwilioBehaviour };

export const twilioOk: TwilioBehaviour = { kind: 'ok' };
export const twilio429 = (retryAfterSeconds?: number): TwilioBehaviour => ({ kind: 'http429', retryAfterSeconds });
export const twilio500: TwilioBehaviour = { kind: 'http500' };
export const twilioError = (status: number, code: number, message: string): TwilioBehaviour => ({ kind: 'error', status, code, message });
export const twilioSlow = (ms: number, then?: TwilioBehaviour): TwilioBehaviour => ({ kind: 'slow', ms, then });
export const twilioHang = (then?: TwilioBehaviour): TwilioBehaviour => ({ kind: 'hang', then });

export interface TwilioRequest {
  at: number;
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  fields: Record<string, string>;
  /** The Basic-auth user, if any. */
  user?: string;
  answered?: { status: number; body: string };
}

export interface TwilioMessage {
  at: number;
  sid: string;
  to: string;
  from: string | null;
  messagingServiceSid: string | null;
  body: string;
  request: TwilioRequest;
}

export interface TwilioStandIn {
  readonly url: string;
  readonly accountSid: string;
  readonly authToken: string;
  readonly requests: readonly TwilioRequest[];
  readonly delivered: readonly TwilioMessage[];
  enqueue(...behaviours: TwilioBehaviour[]): void;
  setDefault(behaviour: TwilioBehaviour): void;
  release(): void;
  waitForRequests(n: number, timeoutMs?: number): Promise<TwilioRequest[]>;
  waitForDelivered(n: number, timeoutMs?: number): Promise<TwilioMessage[]>;
  close(): Promise<void>;
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
export const newAccountSid = () => `AC${hex(16)}`;

const PATH = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/;

export async function startTwilio(credentials: { accountSid?: string; authToken?: string } = {}): Promise<TwilioStandIn> {
  const accountSid = credentials.accountSid ?? newAccountSid();
  const authToken = credentials.authToken ?? hex(16);
  const requests: TwilioRequest[] = [];
  const delivered: TwilioMessage[] = [];
  const queue: TwilioBehaviour[] = [];
  let fallback: TwilioBehaviour = twilioOk;

  const srv = await startStandInServer((req, res, body) => {
    const raw = body.toString('utf8');
    const type = String(req.headers['content-type'] ?? '').toLowerCase();
    const fields: Record<string, string> = {};
    if (type.startsWith('application/x-www-form-urlencoded')) {
      for (const [k, v] of new URLSearchParams(raw)) if (!(k in fields)) fields[k] = v;
    }
    const recorded: TwilioRequest = { at: Date.now(), method: req.method ?? '', path: req.url ?? '', headers: { ...req.headers }, fields };
    const user = basicUser(req);
    if (user) recorded.user = user.user;
    requests.push(recorded);
    srv.notify();
    void handle(req, res, recorded);
  });

  async function handle(req: IncomingMessage, res: ServerResponse, r: TwilioRequest): Promise<void> {
    const path = r.path.split('?')[0]!;
    const m = PATH.exec(path);
    if (!m) return error(res, r, 404, 20404, `The requested resource ${path} was not found`);
    const auth = basicUser(req);
    if (!auth || auth.user !== accountSid || auth.password !== authToken || m[1] !== accountSid) {
      res.setHeader('www-authenticate', 'Basic realm="Twilio API"');
      return error(res, r, 401, 20003, 'Authenticate');
    }
    if (r.method !== 'POST') return error(res, r, 405, 20004, 'Method not allowed');

    const f = r.fields;
    if (!f.To) return error(res, r, 400, 21604, "A 'To' phone number is required.");
    const to = parsePhoneNumberFromString(f.To);
    if (!f.To.startsWith('+') || !to?.isValid()) return error(res, r, 400, 21211, `The 'To' number ${f.To} is not a valid phone number.`);
    if (!f.From && !f.MessagingServiceSid) return error(res, r, 400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message.");
    if (!f.Body) return error(res, r, 400, 21602, 'Message body is required.');
    if (f.StatusCallback !== undefined && !/^https?:\/\/[^\s/]+/.test(f.StatusCallback)) {
      return error(res, r, 400, 21609, `The StatusCallback URL ${f.StatusCallback} is not a valid URL.`);
    }
    if ([...f.Body].length > 1600) return error(res, r, 400, 21617, 'The concatenated message body exceeds the 1600 character limit.');

    let b = queue.shift() ?? fallback;
    for (;;) {
      if (b.kind === 'slow') {
        const { ms } = b;
        await new Promise((resolve) => setTimeout(resolve, ms));
        b = b.then ?? twilioOk;
        continue;
      }
      if (b.kind === 'hang') {
        await srv.hang(res);
        b = b.then ?? twilioOk;
        continue;
      }
      break;
    }
    switch (b.kind) {
      case 'http429':
        if (b.retryAfterSeconds !== undefined) res.setHeader('retry-after', String(b.retryAfterSeconds));
        return error(res, r, 429, 20429, 'Too Many Requests');
      case 'http500':
        return error(res, r, 500, 20500, 'Internal Server Error');
      case 'error':
        return error(res, r, b.status, b.code, b.message);
      case 'ok': {
        const sid = `SM${hex(16)}`;
        const now = new Date().toUTCString().replace('GMT', '+0000');
        const resource = {
          account_sid: accountSid,
          api_version: '2010-04-01',
          body: f.Body,
          date_created: now,
          date_sent: null,
          date_updated: now,
          direction: 'outbound-api',
          error_code: null,
          error_message: null,
          from: f.From ?? null,
          messaging_service_sid: f.MessagingServiceSid ?? null,
          num_media: '0',
          // A Messaging Service picks the sender later, so Twilio answers 0 segments for it.
          num_segments: f.MessagingServiceSid && !f.From ? '0' : String(segments(f.Body)),
          price: null,
          price_unit: 'USD',
          sid,
          status: f.MessagingServiceSid && !f.From ? 'accepted' : 'queued',
          subresource_uris: { media: `/2010-04-01/Accounts/${accountSid}/Messages/${sid}/Media.json` },
          to: to.number,
          uri: `/2010-04-01/Accounts/${accountSid}/Messages/${sid}.json`,
        };
        return answer(res, r, 201, JSON.stringify(resource), () => {
          delivered.push({ at: Date.now(), sid, to: to.number, from: f.From ?? null, messagingServiceSid: f.MessagingServiceSid ?? null, body: f.Body!, request: r });
          srv.notify();
        });
      }
    }
  }

  const waitFor = <T>(list: readonly T[], n: number, timeoutMs: number, what: string): Promise<T[]> =>
    srv.waitUntil(() => list.length >= n, timeoutMs, () => `Twilio stand-in: ${list.length} of ${n} ${what} within ${timeoutMs} ms`).then(() => [...list]);

  return {
    url: srv.url,
    accountSid,
    authToken,
    requests,
    delivered,
    enqueue: (...b) => void queue.push(...b),
    setDefault: (b) => void (fallback = b),
    release: srv.release,
    waitForRequests: (n, timeoutMs = 5_000) => waitFor(requests, n, timeoutMs, 'requests'),
    waitForDelivered: (n, timeoutMs = 5_000) => waitFor(delivered, n, timeoutMs, 'messages delivered'),
    close: srv.close,
  };
}

function basicUser(req: IncomingMessage): { user: string; password: string } | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(String(req.headers.authorization ?? ''));
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** GSM-7 text fits 160 characters in one SMS (153 per part when split); anything else 70 (67). */
function segments(body: string): number {
  const gsm = /^[\n\r A-Za-z0-9@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!"#¤%&'()*+,\-./:;<=>?¡ÄÖÑÜ§¿äöñüà^{}\\[~\]|€]*$/.test(body);
  const len = [...body].length;
  const [one, part] = gsm ? [160, 153] : [70, 67];
  return len <= one ? 1 : Math.ceil(len / part);
}

function error(res: ServerResponse, r: TwilioRequest, status: number, code: number, message: string): void {
  answer(res, r, status, JSON.stringify({ code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status }));
}
