import type { Outcome } from '../../http/failure.js';

/**
 * A Salesforce request that did not succeed, already classified by the one classifier
 * (src/http/failure.ts): `retry` goes back to the durable queue, `final` fails the activity.
 * `mayHaveApplied` tells whether a write could have happened anyway (no answer, or a 5xx), which
 * is what decides whether a create must be looked for before it is repeated.
 */
export class SalesforceError extends Error {
  override readonly name = 'SalesforceError';
  constructor(
    readonly outcome: Exclude<Outcome, 'ok'>,
    /** Short cause for logs and the attempts table, e.g. "http-403 REQUEST_LIMIT_EXCEEDED", "timeout". */
    readonly reason: string,
    readonly detail: { status?: number; errorCode?: string; retryAfterMs?: number; mayHaveApplied: boolean; aborted?: boolean },
  ) {
    super(reason);
  }
}

/** The errorCode of Salesforce's `[{message, errorCode}]` error body, if it has one. */
export function errorCodeOf(body: string): { errorCode?: string; message?: string } {
  try {
    const v = JSON.parse(body) as unknown;
    const first = Array.isArray(v) ? (v[0] as unknown) : v;
    if (first && typeof first === 'object') {
      const o = first as { errorCode?: unknown; message?: unknown; error?: unknown; error_description?: unknown };
      const errorCode = typeof o.errorCode === 'string' ? o.errorCode : typeof o.error === 'string' ? o.error : undefined;
      const message = typeof o.message === 'string' ? o.message : typeof o.error_description === 'string' ? o.error_description : undefined;
      return { ...(errorCode ? { errorCode } : {}), ...(message ? { message } : {}) };
    }
  } catch {
    /* not JSON: no code */
  }
  return {};
}
