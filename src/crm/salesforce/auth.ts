import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import type { Dispatcher } from 'undici';
import type { FailureRules } from '../../http/failure.js';
import { sendAndClassify } from '../../http/send.js';
import type { Logger } from '../../log.js';
import type { SalesforceConfig } from './config.js';
import { errorCodeOf, SalesforceError } from './errors.js';

/**
 * OAuth 2.0 access for a server without a user at hand (SF1): the client-credentials flow or the
 * JWT bearer flow (an RS256 assertion signed here with node:crypto; no SDK). One token serves
 * every request; it is renewed before the org's session timeout runs out, and at once when
 * Salesforce answers INVALID_SESSION_ID (the session was revoked or timed out early). Concurrent
 * callers share one token request.
 *
 * Salesforce's token answer has no lifetime (`expires_in`), only `issued_at` (and not even that
 * for the JWT flow), so the lifetime is the configured session timeout.
 */

export interface AccessToken {
  accessToken: string;
  /** Where REST requests go: the token answer's instance_url. */
  instanceUrl: string;
  /** Epoch ms after which it is renewed before use. */
  renewAt: number;
}

export interface TokenOptions {
  config: Pick<SalesforceConfig, 'auth' | 'instanceUrl' | 'sessionTimeout' | 'timeout'>;
  dispatcher?: Dispatcher;
  log?: Logger;
  now?: () => number;
}

/** Renewal margin before the session timeout. */
const RENEW_BEFORE_MS = 5 * 60_000;
/** The assertion's lifetime; Salesforce accepts up to 3 minutes. */
const ASSERTION_SECONDS = 180;
/**
 * A refused credential is the admin's to fix (a rotated secret, an app not yet approved): the
 * activities wait in the queue meanwhile rather than being dropped, and /health says why.
 */
const TOKEN_RULES: FailureRules = { errorStatus: [400, 401, 403] };

export class TokenProvider {
  private current: AccessToken | undefined;
  private pending: Promise<AccessToken> | undefined;
  private readonly key: KeyObject | undefined;
  private readonly now: () => number;
  /** Token requests sent: they do not count against the org's API limit, but are worth showing. */
  requests = 0;
  lastError: { at: number; reason: string } | undefined;

  constructor(private readonly opts: TokenOptions) {
    const auth = opts.config.auth;
    this.key = auth.flow === 'jwt_bearer' ? createPrivateKey(auth.privateKey) : undefined;
    this.now = opts.now ?? Date.now;
  }

  get tokenUrl(): string {
    return this.opts.config.auth.tokenUrl ?? `${this.opts.config.instanceUrl.replace(/\/+$/, '')}/services/oauth2/token`;
  }

  async get(signal?: AbortSignal): Promise<AccessToken> {
    const t = this.current;
    if (t && this.now() < t.renewAt) return t;
    this.pending ??= this.fetch(signal).finally(() => (this.pending = undefined));
    return this.pending;
  }

  /** Drops the token Salesforce refused; a newer one obtained meanwhile is kept. */
  invalidate(token: AccessToken): void {
    if (this.current === token) this.current = undefined;
  }

  private async fetch(signal?: AbortSignal): Promise<AccessToken> {
    const auth = this.opts.config.auth;
    const form = new URLSearchParams(
      auth.flow === 'client_credentials'
        ? { grant_type: 'client_credentials', client_id: auth.clientId, client_secret: auth.clientSecret }
        : { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: this.assertion() },
    );
    this.requests += 1;
    const res = await sendAndClassify({
      method: 'POST',
      url: this.tokenUrl,
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
      timeoutMs: this.opts.config.timeout,
      dispatcher: this.opts.dispatcher,
      signal,
      rules: TOKEN_RULES,
    });
    if (res.kind === 'thrown') throw res.error;
    if (res.kind === 'transport') {
      throw this.failed(new SalesforceError('retry', `token request: ${res.error.kind}`, { mayHaveApplied: false, aborted: res.error.kind === 'aborted' }));
    }
    if (res.status === 200) {
      const body = parseToken(res.body);
      if (body) {
        const issued = Number(body.issued_at);
        const obtained = Number.isFinite(issued) && issued > 0 ? Math.min(issued, this.now()) : this.now();
        const lifetime = this.opts.config.sessionTimeout;
        const token = { accessToken: body.access_token, instanceUrl: body.instance_url.replace(/\/+$/, ''), renewAt: obtained + Math.max(lifetime / 2, lifetime - RENEW_BEFORE_MS) };
        this.current = token;
        this.lastError = undefined;
        this.opts.log?.info({ flow: auth.flow, instanceUrl: token.instanceUrl }, 'salesforce access token obtained');
        return token;
      }
    }
    const { errorCode, message } = errorCodeOf(res.body);
    const reason = `token request: http-${res.status}${errorCode ? ` ${errorCode}` : ''}${message ? ` (${message})` : ''}`;
    throw this.failed(new SalesforceError(res.outcome === 'ok' || res.outcome === 'unexpected' ? 'retry' : res.outcome, reason, { status: res.status, mayHaveApplied: false, ...(errorCode ? { errorCode } : {}), ...(res.retryAfterMs !== undefined ? { retryAfterMs: res.retryAfterMs } : {}) }));
  }

  private failed(e: SalesforceError): SalesforceError {
    if (!e.detail.aborted) {
      this.lastError = { at: this.now(), reason: e.reason };
      this.opts.log?.error({ reason: e.reason, tokenUrl: this.tokenUrl }, 'salesforce authentication failed');
    }
    return e;
  }

  /** The JWT bearer assertion: header {"alg":"RS256"}, claims iss, sub, aud, exp (RFC 7523). */
  private assertion(): string {
    const auth = this.opts.config.auth;
    if (auth.flow !== 'jwt_bearer' || !this.key) throw new Error('not the JWT bearer flow');
    const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const claims = { iss: auth.clientId, sub: auth.username, aud: auth.audience, exp: Math.floor(this.now() / 1000) + ASSERTION_SECONDS };
    const unsigned = `${b64({ alg: 'RS256' })}.${b64(claims)}`;
    return `${unsigned}.${sign('RSA-SHA256', Buffer.from(unsigned), this.key).toString('base64url')}`;
  }
}

function parseToken(text: string): { access_token: string; instance_url: string; issued_at?: string } | undefined {
  try {
    const v = JSON.parse(text) as { access_token?: unknown; instance_url?: unknown; issued_at?: unknown };
    if (typeof v.access_token !== 'string' || typeof v.instance_url !== 'string' || !/^https?:\/\//.test(v.instance_url)) return undefined;
    return { access_token: v.access_token, instance_url: v.instance_url, ...(typeof v.issued_at === 'string' ? { issued_at: v.issued_at } : {}) };
  } catch {
    return undefined;
  }
}
