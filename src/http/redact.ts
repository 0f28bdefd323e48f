import { escapers } from '../template.js';
import type { BuiltRequest } from './request.js';

/**
 * What logs and histories keep of an outbound request (hook executions, the routing log): the
 * same scrubbing for every feature, so a secret hidden in one log cannot show in another.
 */

export interface LoggedRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
  /** Merge fields that had no value and were sent empty. */
  missing?: string[];
}

/** Header names whose whole value is a credential, whatever it looks like. */
const CREDENTIAL_HEADER = /^(authorization|proxy-authorization|cookie|x-api-key|api-key|x-auth-token)$|token|secret|password/i;
const REDACTED = '[redacted]';

/**
 * What the execution log keeps of a request (CA6): everything an admin needs to see what was
 * sent, minus credentials. Secrets are replaced in every form they can take once escaped into a
 * URL, a form, JSON or XML, since the env value itself never appears there verbatim.
 */
export function redactRequest(built: BuiltRequest, secrets: readonly string[]): LoggedRequest {
  const scrub = scrubberOf(secrets);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(built.headers)) headers[k] = CREDENTIAL_HEADER.test(k) ? REDACTED : scrub(v);
  const out: LoggedRequest = { method: built.method, url: scrub(built.url), headers };
  if (built.body !== undefined) out.body = scrub(built.body);
  if (built.missing.length) out.missing = built.missing;
  return out;
}

/** The text with every form of every secret replaced. */
export function scrubText(text: string, secrets: readonly string[]): string {
  return scrubberOf(secrets)(text);
}

// A service's secrets are one list for its life (read from the environment at start): their
// escaped forms are worked out once per list, not for every request logged.
const scrubbers = new WeakMap<readonly string[], (text: string) => string>();

function scrubberOf(secrets: readonly string[]): (text: string) => string {
  let scrub = scrubbers.get(secrets);
  if (!scrub) {
    const variants = [...new Set(secrets.filter((s) => s.length >= 4).flatMap((s) => [s, escapers.url(s), escapers.form(s), escapers.json(s), escapers.xml(s)]))]
      // longest first, so a secret containing another is replaced whole
      .sort((a, b) => b.length - a.length);
    scrub = (text) => {
      let t = text;
      for (const v of variants) if (t.includes(v)) t = t.split(v).join(REDACTED);
      return t;
    };
    scrubbers.set(secrets, scrub);
  }
  return scrub;
}
