// Shipped with the service (not only the tests) so the Salesforce logging can be tried without an org.
import { createHmac, createPublicKey, randomBytes, verify, type KeyObject } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startStandInServer } from './server.js';

/**
 * A local stand-in for the parts of the Salesforce REST API that activity logging uses, following
 * the documented contract:
 *
 * - `POST /services/oauth2/token`, form encoded: the client-credentials flow (client_id and
 *   client_secret in the body or as HTTP Basic) and the JWT bearer flow
 *   (grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer, an RS256 `assertion` whose iss is the
 *   client id, sub the username, aud the login URL, exp in the future). Answers
 *   `{access_token, instance_url, id, token_type: "Bearer", issued_at, signature, scope}` (the JWT
 *   flow without issued_at and signature, as documented); errors are `{error, error_description}`.
 * - `GET /services/data/vXX.X/search/?q=FIND {…} IN PHONE FIELDS RETURNING Obj(fields [ORDER BY f
 *   [ASC|DESC]] [LIMIT n]), …` answering `{searchRecords: [{attributes: {type, url}, Id, …}]}`,
 *   objects in RETURNING order. Like the real search index, it splits stored values and search
 *   terms into tokens at spaces and punctuation and matches a term whose tokens appear in a field
 *   in that order: "(800) 555-1212" is found by `"800 555 1212"`, not by `8005551212`. Unescaped
 *   reserved characters are a MALFORMED_SEARCH error.
 * - `GET /services/data/vXX.X/query/?q=SELECT Id FROM Task WHERE CallObject = '…'` and
 *   `SELECT Id FROM User WHERE <field> = '…' AND IsActive = true [LIMIT n]` (the only SOQL it
 *   knows; an unknown User field is 400 INVALID_FIELD) answering `{totalSize, done, records}`.
 * - `POST /services/data/vXX.X/sobjects/Task/` → 201 `{id, success, errors}`;
 *   `PATCH /services/data/vXX.X/sobjects/Task/{id}` → 204. Unknown fields, too long strings, a
 *   WhoId that is not a Contact or Lead, a WhatId that is one, an update of TaskSubtype: 400. An
 *   OwnerId that is no User id is 400 FIELD_INTEGRITY_EXCEPTION, one of no User 400
 *   INVALID_CROSS_REFERENCE_KEY, one of an inactive User 400 INACTIVE_OWNER_OR_USER. A Task created
 *   without OwnerId belongs to the integration user (the token's user).
 * - every data answer carries `Sforce-Limit-Info: api-usage=used/limit`; each authenticated data
 *   request counts one; at the limit every data request is 403 REQUEST_LIMIT_EXCEEDED. An expired
 *   or unknown token is 401 INVALID_SESSION_ID. Error bodies are `[{message, errorCode}]`.
 * - programmable failures for the retry tests: 403 limit, 500, 503, slow and hanging answers, an
 *   answer lost after the Task was created, and `expireTokens()`.
 *
 * Composite is not implemented: the service does not use it (see docs/salesforce.md).
 */

export type SfObjectType = 'Contact' | 'Account' | 'Lead';

export interface SeedRecord {
  type: SfObjectType;
  Name: string;
  /** Phone fields as a user typed them, e.g. { Phone: '(800) 555-1212', MobilePhone: '090-1234-5678' }. */
  phones: Partial<Record<string, string>>;
  /** ISO time; default now. */
  LastModifiedDate?: string;
  /** Fixed id (otherwise one is made up with the object's key prefix). */
  Id?: string;
  AccountId?: string;
}

export interface SeedUser {
  Name: string;
  Extension?: string;
  FederationIdentifier?: string;
  Alias?: string;
  EmployeeNumber?: string;
  /** Default true. */
  IsActive?: boolean;
  Id?: string;
}

export interface SfUser extends SeedUser {
  Id: string;
  IsActive: boolean;
}

export interface SfRecord extends Required<Omit<SeedRecord, 'AccountId'>> {
  AccountId?: string;
}

export interface SfTask {
  Id: string;
  createdAt: number;
  fields: Record<string, unknown>;
  /** Every PATCH body applied, in order. */
  updates: Array<{ at: number; fields: Record<string, unknown> }>;
}

export type SfRequestKind = 'token' | 'search' | 'query' | 'create' | 'update' | 'other';

export interface SfRequest {
  at: number;
  method: string;
  path: string;
  kind: SfRequestKind;
  /** The decoded q parameter of search and query requests. */
  q?: string;
  body: string;
  status?: number;
  answer?: string;
}

export type SfBehaviour =
  | { kind: 'ok' }
  | { kind: 'limit' }
  | { kind: 'http500' }
  | { kind: 'http503' }
  | { kind: 'slow'; ms: number }
  | { kind: 'hang' }
  /** The request is carried out, then the connection is dropped before the answer. */
  | { kind: 'lose-answer' };

export interface SalesforceStandInOptions {
  clientId?: string;
  clientSecret?: string;
  /** Enables the JWT bearer flow for this username, checked against this public key (PEM). */
  jwt?: { username: string; publicKey: string; audience?: string };
  /** The org's daily API request allowance. Default 15,000 (Enterprise Edition's base). */
  apiLimit?: number;
  /** Requests already used today. */
  apiUsed?: number;
  /** Custom Task fields that exist in this org (API names); DateTime ones are checked as such. */
  taskFields?: { dateTime?: string[]; text?: string[] };
  records?: SeedRecord[];
  /** Users besides the integration user, for Task owners. */
  users?: SeedUser[];
}

export interface SalesforceStandIn {
  readonly url: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly requests: readonly SfRequest[];
  readonly tasks: readonly SfTask[];
  readonly records: readonly SfRecord[];
  readonly users: readonly SfUser[];
  /** The integration user: whom the token belongs to, the owner of a Task created without OwnerId. */
  readonly integrationUserId: string;
  /** Data requests (everything under /services/data), the ones the API limit counts. */
  dataRequests(): SfRequest[];
  /** Behaviours for the next data requests, in order; then every request is answered normally. */
  enqueue(...b: SfBehaviour[]): void;
  /** Every access token issued so far stops working (as when a session times out). */
  expireTokens(): void;
  setUsage(used: number, limit?: number): void;
  readonly usage: { used: number; limit: number };
  addRecord(r: SeedRecord): SfRecord;
  /** Lets hanging requests go on. */
  release(): void;
  waitFor(pred: () => boolean, timeoutMs?: number, what?: string): Promise<void>;
  close(): Promise<void>;
}

const PREFIX: Record<SfObjectType | 'Task' | 'User', string> = { Contact: '003', Account: '001', Lead: '00Q', Task: '00T', User: '005' };
/** User fields the User query may filter on (a standard org's text fields). */
const USER_FIELDS = new Set(['Extension', 'FederationIdentifier', 'Alias', 'EmployeeNumber', 'Username', 'Name']);
const ORG_ID = '00D5g00000ABCDEFGH';
const USER_ID = '0055g00000ABCDEFGH';
const API_PATH = /^\/services\/data\/v(\d+\.\d)(\/.*)$/;

/** Phone fields per object, as in a standard org. */
const PHONE_FIELDS: Record<SfObjectType, readonly string[]> = {
  Contact: ['Phone', 'MobilePhone', 'HomePhone', 'OtherPhone', 'AssistantPhone', 'Fax'],
  Account: ['Phone', 'Fax'],
  Lead: ['Phone', 'MobilePhone', 'Fax'],
};

const TASK_FIELDS = new Set([
  'Subject', 'Status', 'Description', 'WhoId', 'WhatId', 'ActivityDate', 'Priority', 'OwnerId', 'TaskSubtype',
  'CallType', 'CallDurationInSeconds', 'CallObject', 'CallDisposition',
]);
const TASK_TEXT_LIMITS: Record<string, number> = { Subject: 255, Description: 32_000, CallObject: 255, CallDisposition: 255 };
const CALL_TYPES = new Set(['Inbound', 'Outbound', 'Internal']);
/** Reserved in a SOSL FIND clause unless escaped with a backslash. */
const SOSL_RESERVED = new Set('?&|!{}[]()^~*:\\"\'+-');

const alnum = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function newId(prefix: string): string {
  const bytes = randomBytes(12);
  let s = prefix + '5g';
  for (const b of bytes) s += alnum[b % alnum.length];
  return s.slice(0, 15) + 'AAA';
}

/** Tokens of a search term or stored value: runs of letters and digits, lower-cased. */
export function searchTokens(text: string): string[] {
  return (text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).filter((t) => t.length > 0);
}

function containsRun(hay: string[], needle: string[]): boolean {
  if (!needle.length || needle.length > hay.length) return false;
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

class ApiError extends Error {
  constructor(readonly status: number, readonly errorCode: string, message: string, readonly fields?: string[]) {
    super(message);
  }
}

export async function startSalesforce(opts: SalesforceStandInOptions = {}): Promise<SalesforceStandIn> {
  const clientId = opts.clientId ?? `3MVG9${randomBytes(12).toString('hex')}`;
  const clientSecret = opts.clientSecret ?? randomBytes(16).toString('hex').toUpperCase();
  const jwtKey: KeyObject | undefined = opts.jwt ? createPublicKey(opts.jwt.publicKey) : undefined;
  const requests: SfRequest[] = [];
  const tasks: SfTask[] = [];
  const records: SfRecord[] = [];
  const tokens = new Set<string>();
  const queue: SfBehaviour[] = [];
  const usage = { used: opts.apiUsed ?? 0, limit: opts.apiLimit ?? 15_000 };
  const dateTimeFields = new Set(opts.taskFields?.dateTime ?? []);
  const customFields = new Set([...(opts.taskFields?.dateTime ?? []), ...(opts.taskFields?.text ?? [])]);

  const addRecord = (r: SeedRecord): SfRecord => {
    const rec: SfRecord = {
      type: r.type,
      Name: r.Name,
      phones: { ...r.phones },
      LastModifiedDate: r.LastModifiedDate ?? new Date().toISOString(),
      Id: r.Id ?? newId(PREFIX[r.type]),
      ...(r.AccountId ? { AccountId: r.AccountId } : {}),
    };
    records.push(rec);
    return rec;
  };
  for (const r of opts.records ?? []) addRecord(r);
  const users: SfUser[] = [{ Name: 'Integration User', Id: USER_ID, IsActive: true }];
  for (const u of opts.users ?? []) users.push({ ...u, Id: u.Id ?? newId(PREFIX.User), IsActive: u.IsActive ?? true });

  const srv = await startStandInServer((req, res, raw) => {
    const body = raw.toString('utf8');
    const path = (req.url ?? '').split('?')[0]!;
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    const r: SfRequest = { at: Date.now(), method: req.method ?? '', path, kind: kindOf(req.method ?? '', path), body };
    if (query.has('q')) r.q = query.get('q') ?? '';
    requests.push(r);
    srv.notify();
    void handle(req, res, r).catch((e: unknown) => send(res, r, 500, [{ message: String(e), errorCode: 'UNKNOWN_EXCEPTION' }]));
  });
  const { url, notify } = srv;

  function kindOf(method: string, path: string): SfRequestKind {
    if (path === '/services/oauth2/token') return 'token';
    const m = API_PATH.exec(path);
    if (!m) return 'other';
    const rest = m[2]!.replace(/\/+$/, '');
    if (rest === '/search' && method === 'GET') return 'search';
    if (rest === '/query' && method === 'GET') return 'query';
    if (rest === '/sobjects/Task' && method === 'POST') return 'create';
    if (/^\/sobjects\/Task\/[A-Za-z0-9]{15,18}$/.test(rest) && method === 'PATCH') return 'update';
    return 'other';
  }

  function send(res: ServerResponse, r: SfRequest, status: number, body: unknown, headers: Record<string, string> = {}): void {
    r.status = status;
    const text = body === undefined ? '' : JSON.stringify(body);
    r.answer = text;
    if (res.destroyed) return;
    res.writeHead(status, {
      ...(text ? { 'content-type': 'application/json;charset=UTF-8', 'content-length': String(Buffer.byteLength(text)) } : {}),
      ...headers,
    });
    res.end(text);
    notify();
  }

  async function handle(req: IncomingMessage, res: ServerResponse, r: SfRequest): Promise<void> {
    if (r.kind === 'token') return token(req, res, r);
    const m = API_PATH.exec(r.path);
    if (!m) return send(res, r, 404, [{ message: 'The requested resource does not exist', errorCode: 'NOT_FOUND' }]);

    const bearer = /^Bearer\s+(\S+)$/i.exec(String(req.headers.authorization ?? ''))?.[1];
    if (!bearer || !tokens.has(bearer)) return send(res, r, 401, [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }]);
    if (usage.used >= usage.limit) return send(res, r, 403, [{ message: 'TotalRequests Limit exceeded.', errorCode: 'REQUEST_LIMIT_EXCEEDED' }]);

    const behaviour = queue.shift() ?? { kind: 'ok' };
    const limitHeader = () => ({ 'sforce-limit-info': `api-usage=${usage.used}/${usage.limit}` });
    switch (behaviour.kind) {
      case 'limit':
        return send(res, r, 403, [{ message: 'TotalRequests Limit exceeded.', errorCode: 'REQUEST_LIMIT_EXCEEDED' }], limitHeader());
      case 'http500':
        usage.used += 1;
        return send(res, r, 500, [{ message: 'An unexpected error occurred. Please include this ErrorId if you contact support: 1234567890-12345 (-1234567890)', errorCode: 'UNKNOWN_EXCEPTION' }], limitHeader());
      case 'http503':
        return send(res, r, 503, [{ message: 'Server temporarily unavailable', errorCode: 'SERVER_UNAVAILABLE' }]);
      case 'slow':
        await new Promise((resolve) => setTimeout(resolve, behaviour.ms));
        break;
      case 'hang':
        await srv.hang(res);
        if (res.destroyed) return;
        break;
    }

    usage.used += 1;
    let status: number;
    let out: unknown;
    try {
      [status, out] = data(r, m[1]!, m[2]!.replace(/\/+$/, ''));
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      status = e.status;
      out = [{ message: e.message, errorCode: e.errorCode, ...(e.fields ? { fields: e.fields } : {}) }];
    }
    if (behaviour.kind === 'lose-answer') {
      r.status = 0;
      res.socket?.destroy();
      notify();
      return;
    }
    send(res, r, status, out, limitHeader());
  }

  function data(r: SfRequest, version: string, rest: string): [number, unknown] {
    switch (r.kind) {
      case 'search':
        return [200, { searchRecords: search(r.q ?? '', version) }];
      case 'query':
        return [200, /\bFROM\s+User\b/i.test(r.q ?? '') ? soqlUser(r.q ?? '', version) : soqlTask(r.q ?? '', version)];
      case 'create': {
        const fields = jsonObject(r.body);
        checkTask(fields, 'create');
        const task: SfTask = { Id: newId(PREFIX.Task), createdAt: Date.now(), fields: { OwnerId: USER_ID, ...fields }, updates: [] };
        tasks.push(task);
        return [201, { id: task.Id, success: true, errors: [] }];
      }
      case 'update': {
        const id = rest.split('/').pop()!;
        const task = tasks.find((t) => t.Id === id || t.Id.slice(0, 15) === id.slice(0, 15));
        if (!task) throw new ApiError(404, 'NOT_FOUND', 'The requested resource does not exist');
        const fields = jsonObject(r.body);
        checkTask(fields, 'update');
        Object.assign(task.fields, fields);
        task.updates.push({ at: Date.now(), fields });
        return [204, undefined];
      }
      default:
        throw new ApiError(404, 'NOT_FOUND', 'The requested resource does not exist');
    }
  }

  function jsonObject(body: string): Record<string, unknown> {
    let v: unknown;
    try {
      v = JSON.parse(body);
    } catch {
      throw new ApiError(400, 'JSON_PARSER_ERROR', 'Unexpected character in the request body');
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new ApiError(400, 'JSON_PARSER_ERROR', 'Expected a JSON object');
    return v as Record<string, unknown>;
  }

  function checkTask(fields: Record<string, unknown>, op: 'create' | 'update'): void {
    for (const [k, v] of Object.entries(fields)) {
      if (!TASK_FIELDS.has(k) && !customFields.has(k)) throw new ApiError(400, 'INVALID_FIELD', `No such column '${k}' on sobject of type Task`);
      if (op === 'update' && k === 'TaskSubtype') throw new ApiError(400, 'INVALID_FIELD_FOR_INSERT_UPDATE', 'Unable to create/update fields: TaskSubtype. Please check the security settings of this field and verify that it is read/write for your profile or permission set.', [k]);
      const max = TASK_TEXT_LIMITS[k];
      if (max !== undefined && typeof v === 'string' && [...v].length > max) {
        throw new ApiError(400, 'STRING_TOO_LONG', `${k}: data value too large: ${v.slice(0, 20)}... (max length=${max})`, [k]);
      }
      if (k === 'CallType' && v !== null && !CALL_TYPES.has(String(v))) throw new ApiError(400, 'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST', `Call Type: bad value for restricted picklist field: ${String(v)}`, [k]);
      if (k === 'CallDurationInSeconds' && v !== null && !Number.isInteger(v)) throw new ApiError(400, 'JSON_PARSER_ERROR', `Cannot deserialize instance of int from ${JSON.stringify(v)}`);
      if ((dateTimeFields.has(k) && v !== null) && (typeof v !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?(Z|[+-]\d\d:?\d\d)$/.test(v))) {
        throw new ApiError(400, 'JSON_PARSER_ERROR', `Cannot deserialize instance of datetime from VALUE_STRING value ${JSON.stringify(v)}`);
      }
      if (k === 'ActivityDate' && v !== null && (typeof v !== 'string' || !/^\d{4}-\d\d-\d\d$/.test(v))) throw new ApiError(400, 'JSON_PARSER_ERROR', `Cannot deserialize instance of date from ${JSON.stringify(v)}`);
      if (k === 'OwnerId') {
        const id = String(v);
        if (!id.startsWith(PREFIX.User)) throw new ApiError(400, 'FIELD_INTEGRITY_EXCEPTION', `Assigned To ID: id value of incorrect type: ${id}`, ['OwnerId']);
        const user = users.find((u) => u.Id === id || u.Id.slice(0, 15) === id.slice(0, 15));
        if (!user) throw new ApiError(400, 'INVALID_CROSS_REFERENCE_KEY', 'invalid cross reference id', ['OwnerId']);
        if (!user.IsActive) throw new ApiError(400, 'INACTIVE_OWNER_OR_USER', `operation performed with inactive user [${user.Id}] as owner of task`, ['OwnerId']);
      }
      if (k === 'WhoId' && v !== null) {
        const rec = records.find((x) => x.Id === v);
        if (!rec || (rec.type !== 'Contact' && rec.type !== 'Lead')) throw new ApiError(400, 'FIELD_INTEGRITY_EXCEPTION', `Name ID: id value of incorrect type: ${String(v)}`, ['WhoId']);
      }
      if (k === 'WhatId' && v !== null) {
        const id = String(v);
        if (id.startsWith(PREFIX.Contact) || id.startsWith(PREFIX.Lead)) throw new ApiError(400, 'FIELD_INTEGRITY_EXCEPTION', `Related To ID: id value of incorrect type: ${id}`, ['WhatId']);
        if (id.startsWith(PREFIX.Account) && !records.some((x) => x.Id === id)) throw new ApiError(400, 'INVALID_CROSS_REFERENCE_KEY', 'invalid cross reference id', ['WhatId']);
      }
    }
  }

  function search(q: string, version: string): unknown[] {
    const m = /^\s*FIND\s*\{((?:\\.|[^\\}])*)\}\s*(.*)$/is.exec(q);
    if (!m) throw new ApiError(400, 'MALFORMED_SEARCH', 'No search term found. The search term must be enclosed in braces.');
    const terms = parseTerms(m[1]!);
    let rest = m[2]!.trim();
    const group = /^IN\s+(\w+)\s+FIELDS\s*/i.exec(rest);
    if (!group || group[1]!.toUpperCase() !== 'PHONE') throw new ApiError(400, 'MALFORMED_SEARCH', 'this stand-in implements IN PHONE FIELDS only');
    rest = rest.slice(group[0].length);
    const ret = /^RETURNING\s+(.*)$/is.exec(rest);
    if (!ret) throw new ApiError(400, 'MALFORMED_SEARCH', 'this stand-in needs a RETURNING clause');
    const out: unknown[] = [];
    for (const spec of parseReturning(ret[1]!)) {
      const matched = records.filter(
        (rec) => rec.type === spec.type && PHONE_FIELDS[rec.type].some((f) => {
          const value = rec.phones[f];
          return value !== undefined && terms.some((t) => containsRun(searchTokens(value), t));
        }),
      );
      if (spec.orderBy) {
        const { field, desc } = spec.orderBy;
        matched.sort((a, b) => {
          const av = String(fieldOf(a, field) ?? '');
          const bv = String(fieldOf(b, field) ?? '');
          return desc ? bv.localeCompare(av) : av.localeCompare(bv);
        });
      }
      for (const rec of matched.slice(0, spec.limit ?? 2000)) {
        const row: Record<string, unknown> = { attributes: { type: rec.type, url: `/services/data/v${version}/sobjects/${rec.type}/${rec.Id}` } };
        for (const f of spec.fields) row[f] = fieldOf(rec, f) ?? null;
        out.push(row);
      }
    }
    return out;
  }

  function soqlTask(q: string, version: string): unknown {
    const m = /^\s*SELECT\s+Id\s+FROM\s+Task\s+WHERE\s+CallObject\s*=\s*'((?:\\.|[^'\\])*)'\s*(?:ORDER\s+BY\s+CreatedDate(?:\s+ASC)?\s*)?(?:LIMIT\s+(\d+)\s*)?$/i.exec(q);
    if (!m) throw new ApiError(400, 'MALFORMED_QUERY', 'this stand-in answers SELECT Id FROM Task WHERE CallObject = \'…\' only');
    const value = m[1]!.replace(/\\(.)/g, '$1');
    const found = tasks.filter((t) => t.fields.CallObject === value).slice(0, m[2] ? Number(m[2]) : undefined);
    return {
      totalSize: found.length,
      done: true,
      records: found.map((t) => ({ attributes: { type: 'Task', url: `/services/data/v${version}/sobjects/Task/${t.Id}` }, Id: t.Id })),
    };
  }

  function soqlUser(q: string, version: string): unknown {
    const m = /^\s*SELECT\s+Id\s+FROM\s+User\s+WHERE\s+(.+?)\s*(?:LIMIT\s+(\d+)\s*)?$/i.exec(q);
    if (!m) throw new ApiError(400, 'MALFORMED_QUERY', 'this stand-in answers SELECT Id FROM User WHERE <field> = \'…\' AND IsActive = true only');
    let active: boolean | undefined;
    const equals: Array<[string, string]> = [];
    for (const cond of m[1]!.split(/\s+AND\s+/i)) {
      const c = /^(\w+)\s*=\s*(?:'((?:\\.|[^'\\])*)'|(true|false))$/i.exec(cond.trim());
      if (!c) throw new ApiError(400, 'MALFORMED_QUERY', `unexpected token: ${cond.trim().split(/\s+/)[0]}`);
      const field = c[1]!;
      if (field.toLowerCase() === 'isactive') {
        active = (c[3] ?? c[2] ?? '').toLowerCase() === 'true';
        continue;
      }
      const known = [...USER_FIELDS].find((f) => f.toLowerCase() === field.toLowerCase());
      if (!known) throw new ApiError(400, 'INVALID_FIELD', `No such column '${field}' on entity 'User'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name.`);
      if (c[2] === undefined) throw new ApiError(400, 'INVALID_QUERY_FILTER_OPERATOR', `value of filter criterion for field '${known}' must be of type string and should be enclosed in quotes`);
      equals.push([known, c[2].replace(/\\(.)/g, '$1')]);
    }
    const found = users
      .filter((u) => (active === undefined || u.IsActive === active) && equals.every(([f, v]) => (u as unknown as Record<string, unknown>)[f] === v))
      .slice(0, m[2] ? Number(m[2]) : undefined);
    return {
      totalSize: found.length,
      done: true,
      records: found.map((u) => ({ attributes: { type: 'User', url: `/services/data/v${version}/sobjects/User/${u.Id}` }, Id: u.Id })),
    };
  }

  function fieldOf(rec: SfRecord, field: string): unknown {
    const key = Object.keys(rec).find((k) => k.toLowerCase() === field.toLowerCase());
    if (key && key !== 'phones' && key !== 'type') return rec[key as keyof SfRecord];
    const phone = Object.keys(rec.phones).find((k) => k.toLowerCase() === field.toLowerCase());
    if (phone) return rec.phones[phone];
    if (PHONE_FIELDS[rec.type].some((f) => f.toLowerCase() === field.toLowerCase())) return undefined;
    throw new ApiError(400, 'INVALID_FIELD', `No such column '${field}' on entity '${rec.type}'.`);
  }

  function token(req: IncomingMessage, res: ServerResponse, r: SfRequest): void {
    const oauthError = (status: number, error: string, description: string) => send(res, r, status, { error, error_description: description });
    if (r.method !== 'POST') return oauthError(400, 'invalid_request', 'must use HTTP POST');
    if (!String(req.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded')) {
      return oauthError(400, 'invalid_request', 'unsupported content type');
    }
    const f = new URLSearchParams(r.body);
    const grant = f.get('grant_type');
    const issue = (withSignature: boolean) => {
      const access = `${ORG_ID}!${randomBytes(24).toString('base64url')}`;
      tokens.add(access);
      const id = `${url}/id/${ORG_ID}/${USER_ID}`;
      const issuedAt = String(Date.now());
      send(res, r, 200, {
        access_token: access,
        ...(withSignature ? { signature: createHmac('sha256', clientSecret).update(id + issuedAt).digest('base64') } : {}),
        scope: 'api',
        instance_url: url,
        id,
        token_type: 'Bearer',
        ...(withSignature ? { issued_at: issuedAt } : {}),
      });
    };
    if (grant === 'client_credentials') {
      const basic = /^Basic\s+(\S+)$/i.exec(String(req.headers.authorization ?? ''))?.[1];
      let [id, secret] = [f.get('client_id'), f.get('client_secret')];
      if (basic) [id, secret] = Buffer.from(basic, 'base64').toString('utf8').split(':') as [string, string];
      if (id !== clientId || secret !== clientSecret) return oauthError(400, 'invalid_client', 'invalid client credentials');
      return issue(true);
    }
    if (grant === 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
      if (!opts.jwt || !jwtKey) return oauthError(400, 'unsupported_grant_type', 'grant type not supported');
      const problem = checkAssertion(f.get('assertion') ?? '', jwtKey, { iss: clientId, sub: opts.jwt.username, aud: opts.jwt.audience ?? 'https://login.salesforce.com' });
      if (problem) return oauthError(400, 'invalid_grant', problem);
      return issue(false);
    }
    return oauthError(400, 'unsupported_grant_type', 'grant type not supported');
  }

  return {
    url,
    clientId,
    clientSecret,
    requests,
    tasks,
    records,
    users,
    integrationUserId: USER_ID,
    dataRequests: () => requests.filter((r) => API_PATH.test(r.path)),
    enqueue: (...b) => void queue.push(...b),
    expireTokens: () => tokens.clear(),
    setUsage(used, limit) {
      usage.used = used;
      if (limit !== undefined) usage.limit = limit;
    },
    usage,
    addRecord,
    release: srv.release,
    waitFor: (pred, timeoutMs = 10_000, what = 'condition') =>
      srv.waitUntil(pred, timeoutMs, () => `Salesforce stand-in: ${what} not reached within ${timeoutMs} ms (${requests.length} requests, ${tasks.length} tasks)`),
    close: srv.close,
  };
}

function parseTerms(find: string): string[][] {
  const terms: string[][] = [];
  for (const part of splitOr(find)) {
    let text = part.trim();
    const quoted = text.length >= 2 && text.startsWith('"') && text.endsWith('"') && text[text.length - 2] !== '\\';
    if (quoted) text = text.slice(1, -1);
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      if (c === '\\') {
        i++;
        continue;
      }
      if (SOSL_RESERVED.has(c)) throw new ApiError(400, 'MALFORMED_SEARCH', `line 1:${i + 6} no viable alternative at character '${c}'`);
    }
    const tokens = searchTokens(text.replace(/\\(.)/g, '$1'));
    if (tokens.join('').length < 2) throw new ApiError(400, 'MALFORMED_SEARCH', 'search term must be longer than one character');
    terms.push(tokens);
  }
  return terms;
}

/** Splits at OR outside quotes. */
function splitOr(find: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let inQuote = false;
  for (let i = 0; i < find.length; i++) {
    const c = find[i]!;
    if (c === '\\') {
      cur += c + (find[i + 1] ?? '');
      i++;
      continue;
    }
    if (c === '"') inQuote = !inQuote;
    if (!inQuote && /^\sOR\s/i.test(find.slice(i, i + 4))) {
      parts.push(cur);
      cur = '';
      i += 3;
      continue;
    }
    cur += c;
  }
  parts.push(cur);
  return parts.filter((p) => p.trim() !== '');
}

interface ReturningSpec {
  type: SfObjectType;
  fields: string[];
  orderBy?: { field: string; desc: boolean };
  limit?: number;
}

function parseReturning(text: string): ReturningSpec[] {
  const specs: ReturningSpec[] = [];
  const item = /\s*(\w+)\s*(?:\(([^)]*)\))?\s*(?:,|$)/gy;
  let m: RegExpExecArray | null;
  while (item.lastIndex < text.length && (m = item.exec(text))) {
    const type = m[1]!;
    if (type !== 'Contact' && type !== 'Account' && type !== 'Lead') throw new ApiError(400, 'INVALID_TYPE', `sObject type '${type}' is not supported.`);
    const inner = (m[2] ?? 'Id').trim();
    const spec: ReturningSpec = { type, fields: [] };
    const parts = /^(.*?)(?:\s+ORDER\s+BY\s+(\w+)(?:\s+(ASC|DESC))?)?(?:\s+LIMIT\s+(\d+))?$/is.exec(inner)!;
    spec.fields = parts[1]!.split(',').map((f) => f.trim()).filter(Boolean);
    if (/\bWHERE\b/i.test(parts[1]!)) throw new ApiError(400, 'MALFORMED_SEARCH', 'this stand-in does not implement WHERE');
    if (parts[2]) spec.orderBy = { field: parts[2], desc: (parts[3] ?? '').toUpperCase() === 'DESC' };
    if (parts[4]) spec.limit = Number(parts[4]);
    specs.push(spec);
  }
  if (!specs.length) throw new ApiError(400, 'MALFORMED_SEARCH', 'empty RETURNING clause');
  return specs;
}

/** Why a JWT bearer assertion is refused, or undefined when it is good. */
function checkAssertion(assertion: string, key: KeyObject, want: { iss: string; sub: string; aud: string }): string | undefined {
  const parts = assertion.split('.');
  if (parts.length !== 3) return 'invalid assertion';
  const [h, p, s] = parts as [string, string, string];
  let header: { alg?: string };
  let claims: { iss?: string; sub?: string; aud?: string | string[]; exp?: number };
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as typeof header;
    claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as typeof claims;
  } catch {
    return 'invalid assertion';
  }
  if (header.alg !== 'RS256') return 'invalid assertion';
  if (!verify('RSA-SHA256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'))) return 'invalid assertion';
  if (claims.iss !== want.iss) return 'invalid client credentials';
  if (claims.sub !== want.sub) return 'user hasn\'t approved this consumer';
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.includes(want.aud)) return 'audience is invalid';
  if (typeof claims.exp !== 'number' || claims.exp * 1000 <= Date.now()) return 'expired authorization code';
  return undefined;
}
