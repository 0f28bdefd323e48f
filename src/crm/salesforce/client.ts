import type { Dispatcher } from 'undici';
import type { FailureRules } from '../../http/failure.js';
import type { HttpMethod, HttpResponse } from '../../http/request.js';
import { sendAndClassify } from '../../http/send.js';
import type { Logger } from '../../log.js';
import type { AccessToken, TokenProvider } from './auth.js';
import { errorCodeOf, SalesforceError } from './errors.js';
import type { UsageMeter } from './usage.js';

/**
 * The REST calls activity logging needs, over undici through the shared request module: a SOSL
 * search, Task create, Task update, a SOQL lookup of a Task by CallObject (only to find out
 * whether a create whose answer was lost went through) and of a User by a field (the Task's owner). Every answer's limit header is
 * read, every data request is counted into the caller's meter (SF7), and an INVALID_SESSION_ID
 * gets one new token and one repeat inside the same attempt.
 */

export interface RequestRecord {
  method: string;
  /** Path without the query: the query of a search holds the caller's number. */
  path: string;
  status?: number;
  errorCode?: string;
  error?: string;
  ms: number;
}

/**
 * A request Salesforce refused before running it: an expired or revoked session (401
 * INVALID_SESSION_ID). It is not authenticated, so the org's API allowance does not count it.
 */
export const isRefused = (r: RequestRecord): boolean => r.status === 401;

/**
 * What one attempt spent: each data request sent. The org's API limit counts those Salesforce
 * ran; refused ones (401) are counted apart.
 */
export class CallMeter {
  readonly requests: RequestRecord[] = [];
  private committed = 0;
  /** Counted requests not yet written to the store; marks them written. */
  take(): number {
    const fresh = this.requests.slice(this.committed);
    this.committed = this.requests.length;
    return fresh.filter((r) => !isRefused(r)).length;
  }
  /** Refused (401) requests of the attempt. */
  get refused(): number {
    return this.requests.filter(isRefused).length;
  }
}

export interface SearchRecord {
  type: string;
  Id: string;
  LastModifiedDate?: string;
}

/**
 * Error codes Salesforce uses for passing trouble, whatever the status: the daily allowance
 * (403), a record locked by another transaction, maintenance. INVALID_SESSION_ID is here for the
 * case the fresh token is refused too.
 */
const RULES: FailureRules = {
  errorMatch: /"errorCode"\s*:\s*"(REQUEST_LIMIT_EXCEEDED|INVALID_SESSION_ID|UNABLE_TO_LOCK_ROW|SERVER_UNAVAILABLE|API_CURRENTLY_DISABLED)"/,
};

export interface ClientOptions {
  auth: TokenProvider;
  apiVersion: string;
  timeoutMs: number;
  usage: UsageMeter;
  dispatcher?: Dispatcher;
  log?: Logger;
}

export class SalesforceClient {
  constructor(private readonly opts: ClientOptions) {}

  async search(sosl: string, meter: CallMeter, signal?: AbortSignal): Promise<SearchRecord[]> {
    const res = await this.call('GET', `/search/?q=${encodeURIComponent(sosl)}`, undefined, meter, signal);
    const body = parse(res.body) as { searchRecords?: Array<{ attributes?: { type?: string }; Id?: string; LastModifiedDate?: string }> } | undefined;
    if (!body || !Array.isArray(body.searchRecords)) throw badAnswer('search', res);
    return body.searchRecords.flatMap((r) =>
      r.attributes?.type && r.Id ? [{ type: r.attributes.type, Id: r.Id, ...(r.LastModifiedDate ? { LastModifiedDate: r.LastModifiedDate } : {}) }] : [],
    );
  }

  async createTask(fields: Record<string, unknown>, meter: CallMeter, signal?: AbortSignal): Promise<string> {
    const res = await this.call('POST', '/sobjects/Task/', fields, meter, signal);
    const body = parse(res.body) as { id?: string; success?: boolean } | undefined;
    if (!body?.id || body.success === false) throw badAnswer('create', res);
    return body.id;
  }

  async updateTask(id: string, fields: Record<string, unknown>, meter: CallMeter, signal?: AbortSignal): Promise<void> {
    await this.call('PATCH', `/sobjects/Task/${encodeURIComponent(id)}`, fields, meter, signal);
  }

  /** The Task created for this call, if one exists (CallObject holds our call id). */
  async findTask(callObject: string, meter: CallMeter, signal?: AbortSignal): Promise<string | undefined> {
    const soql = `SELECT Id FROM Task WHERE CallObject = '${soqlString(callObject)}' ORDER BY CreatedDate LIMIT 1`;
    const res = await this.call('GET', `/query/?q=${encodeURIComponent(soql)}`, undefined, meter, signal);
    const body = parse(res.body) as { records?: Array<{ Id?: string }> } | undefined;
    if (!body || !Array.isArray(body.records)) throw badAnswer('query', res);
    return body.records[0]?.Id;
  }

  /** Active Users whose `field` equals `value` (at most two: one is an answer, two are ambiguous). */
  async findUsers(field: string, value: string, meter: CallMeter, signal?: AbortSignal): Promise<string[]> {
    const soql = `SELECT Id FROM User WHERE ${field} = '${soqlString(value)}' AND IsActive = true LIMIT 2`;
    const res = await this.call('GET', `/query/?q=${encodeURIComponent(soql)}`, undefined, meter, signal);
    const body = parse(res.body) as { records?: Array<{ Id?: string }> } | undefined;
    if (!body || !Array.isArray(body.records)) throw badAnswer('query', res);
    return body.records.flatMap((r) => (r.Id ? [r.Id] : []));
  }

  private async call(method: HttpMethod, path: string, body: unknown, meter: CallMeter, signal?: AbortSignal): Promise<HttpResponse> {
    const write = method !== 'GET';
    for (let renewed = false; ; renewed = true) {
      const token: AccessToken = await this.opts.auth.get(signal);
      const url = `${token.instanceUrl}/services/data/v${this.opts.apiVersion}${path}`;
      const record: RequestRecord = { method, path: `/services/data/v${this.opts.apiVersion}${path.split('?')[0]}`, ms: 0 };
      meter.requests.push(record);
      const res = await sendAndClassify({
        method,
        url,
        headers: {
          authorization: `Bearer ${token.accessToken}`,
          accept: 'application/json',
          ...(body !== undefined ? { 'content-type': 'application/json; charset=utf-8' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        timeoutMs: this.opts.timeoutMs,
        dispatcher: this.opts.dispatcher,
        signal,
        rules: RULES,
      });
      if (res.kind === 'thrown') throw res.error;
      if (res.kind === 'transport') {
        record.error = res.error.kind;
        record.ms = res.latencyMs;
        // Only a request that never connected is known not to have been carried out.
        throw new SalesforceError(res.outcome === 'ok' ? 'retry' : res.outcome, `${method} ${record.path}: ${res.error.kind}`, {
          mayHaveApplied: write && res.error.kind !== 'connect',
          aborted: res.error.kind === 'aborted',
        });
      }
      record.status = res.status;
      record.ms = res.latencyMs;
      this.opts.usage.observe(res.headers['sforce-limit-info']);
      if (res.status >= 200 && res.status < 300) {
        this.opts.log?.debug({ method, path: record.path, status: res.status, ms: res.latencyMs }, 'salesforce request');
        return res;
      }
      const { errorCode, message } = errorCodeOf(res.body);
      if (errorCode) record.errorCode = errorCode;
      if (res.status === 401 && errorCode === 'INVALID_SESSION_ID' && !renewed) {
        this.opts.auth.invalidate(token);
        this.opts.log?.info({ method, path: record.path }, 'salesforce session expired: renewing the token');
        continue;
      }
      if (errorCode === 'REQUEST_LIMIT_EXCEEDED') this.opts.usage.exceededAt = Date.now();
      const reason = `${method} ${record.path}: http-${res.status}${errorCode ? ` ${errorCode}` : ''}${message && res.outcome === 'final' ? ` (${message.slice(0, 200)})` : ''}`;
      throw new SalesforceError(res.outcome === 'ok' || res.outcome === 'unexpected' ? 'final' : res.outcome, reason, {
        status: res.status,
        ...(errorCode ? { errorCode } : {}),
        ...(res.retryAfterMs !== undefined ? { retryAfterMs: res.retryAfterMs } : {}),
        // A 5xx may come after the write was committed; a 4xx means it was refused.
        mayHaveApplied: write && res.status >= 500,
      });
    }
  }
}

/** A SOQL string literal's content: backslash and quote escaped. */
function soqlString(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** A 2xx answer we cannot read: Salesforce (or a proxy) answered something else; try again later. */
function badAnswer(what: string, res: HttpResponse): SalesforceError {
  return new SalesforceError('retry', `${what}: unreadable answer (http-${res.status}, ${res.body.slice(0, 80).replace(/\s+/g, ' ')})`, {
    status: res.status,
    mayHaveApplied: what === 'create',
  });
}
