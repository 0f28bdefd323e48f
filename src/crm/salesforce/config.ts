import { createPrivateKey } from 'node:crypto';
import { z } from 'zod';
import { countryCode, duration, httpUrl } from '../../config/types.js';
import { BASE_FIELDS, EVENT_FIELDS } from '../../asterisk/call-event-types.js';
import { fieldsOf } from '../../template.js';

/**
 * `crm.salesforce:` — MiiTel's "Salesforce activity logging" (SF1–SF7) as configuration. Every
 * MiiTel setting has a key here; docs/salesforce.md maps one to the other.
 */

const API_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
const USER_ID = /^005[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?$/;
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A PEM private key from the environment; `\n` written as two characters is read as a newline. */
const privateKey = z.string().transform((v, ctx) => {
  const pem = v.includes('\\n') && !v.includes('\n') ? v.replaceAll('\\n', '\n') : v;
  try {
    createPrivateKey(pem);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `not a PEM private key (${(e as Error).message})` });
    return z.NEVER;
  }
  return pem;
});

const clientCredentials = z
  .object({
    flow: z.literal('client_credentials'),
    clientId: z.string().min(1).describe("the connected app's consumer key"),
    clientSecret: z.string().min(1).describe("the connected app's consumer secret (from the environment)"),
    tokenUrl: httpUrl.optional().describe('default: instanceUrl + /services/oauth2/token'),
  })
  .strict();

const jwtBearer = z
  .object({
    flow: z.literal('jwt_bearer'),
    clientId: z.string().min(1).describe("the connected app's consumer key (the JWT's iss)"),
    username: z.string().min(1).describe('the integration user (the JWT\'s sub)'),
    privateKey: privateKey.describe('PEM of the key whose certificate the connected app holds (from the environment)'),
    audience: httpUrl.default('https://login.salesforce.com').describe('the JWT\'s aud: https://login.salesforce.com, https://test.salesforce.com or a community URL'),
    tokenUrl: httpUrl.optional().describe('default: instanceUrl + /services/oauth2/token'),
  })
  .strict();

const labelled = z.array(z.object({ label: z.string(), value: z.string() }).strict()).min(1);
/** One template, or label/value lines ("Label: value"; a line whose value is empty is left out). */
const commentSchema = z.union([z.string().min(1), labelled]);
export type CommentTemplate = z.output<typeof commentSchema>;

const usageWarning = z
  .union([z.number().int().nonnegative(), z.string().regex(/^\d+(\.\d+)?%$/, 'a number of requests or a percentage such as 10%')])
  .transform((v) => (typeof v === 'number' ? { remaining: v } : { percent: Number(v.slice(0, -1)) }));

const timeZone = z.string().refine((tz) => {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}, 'an IANA time zone such as Asia/Tokyo or UTC');

export const DEFAULT_COMMENT: CommentTemplate = [
  { label: 'Direction', value: '{callType}' },
  { label: 'Number', value: '{number}' },
  { label: 'Caller', value: '{caller} {callerName}' },
  { label: 'Dialled', value: '{called}' },
  { label: 'Queue', value: '{queue}' },
  { label: 'Answered by', value: '{answeredBy}' },
  { label: 'Talk time', value: '{talkSeconds} s' },
  { label: 'Call id', value: '{callId}' },
];

export const DEFAULT_MISSED_COMMENT: CommentTemplate = [
  { label: 'Direction', value: '{callType}' },
  { label: 'Number', value: '{number}' },
  { label: 'Caller', value: '{caller} {callerName}' },
  { label: 'Dialled', value: '{called}' },
  { label: 'Queue', value: '{queue}' },
  { label: 'Rang for', value: '{duration} s' },
  { label: 'Call id', value: '{callId}' },
];

/**
 * Who owns a call's Task (MiiTel: the agent who answered): `{agent}` (or, for a queue member, its
 * MemberName) through `map`, else a User found by `lookup.field`; otherwise the integration user,
 * with the reason logged.
 */
const ownersSchema = z
  .object({
    map: z
      .record(z.string().min(1), z.string().regex(USER_ID, 'a User id (005…, 15 or 18 characters)'))
      .default({})
      .describe('agent (device such as 2601, or queue member name) → Salesforce User id'),
    lookup: z
      .object({
        field: z.string().regex(API_NAME).describe('User field holding the agent, e.g. Extension or FederationIdentifier'),
        cache: duration.default(3_600_000).describe('how long an answer (found or not) is reused'),
      })
      .strict()
      .optional()
      .describe('agents not in map: one SOQL query per agent per cache period'),
  })
  .strict();

/** Merge fields of the call that every Salesforce template may use. */
export const CALL_FIELDS = [
  ...BASE_FIELDS.filter((f) => f !== 'channelId' && f !== 'event' && f !== 'time'),
  ...EVENT_FIELDS['call.start'],
  ...EVENT_FIELDS['call.answer'],
  ...EVENT_FIELDS['call.end'],
  'queue', 'position', 'wait',
  /** inbound | outbound */
  'direction',
  /** Inbound | Outbound (the Task's CallType) */
  'callType',
  /** the other party: the caller of an inbound call, the dialled number of an outbound one */
  'number',
  /** our side: who answered an inbound call (last, after transfers), who placed an outbound one */
  'agent',
  /** the first device that answered; the queue member's name; the answering channel; every device in order */
  'firstAgent', 'agentName', 'agentChannel', 'agents',
  /** numbers in E.164 (+81354127788) and national (0354127788) form; the plain ones are as Asterisk gave them */
  'number.e164', 'number.national', 'caller.e164', 'caller.national', 'called.e164', 'called.national',
  /** the memo given after the call (POST /salesforce/memo, or the AMI UserEvent) */
  'memo',
  'dialStart', 'callStart', 'callEnd',
  /** the missed mark on a missed call, else empty */
  'missed',
  'recordId', 'recordType', 'matchRule',
] as const;

export const salesforceSchema = z
  .object({
    instanceUrl: httpUrl.describe('your My Domain URL, e.g. https://example.my.salesforce.com'),
    apiVersion: z.string().regex(/^\d{2,3}\.0$/, 'a REST API version such as 62.0').default('62.0'),
    auth: z.discriminatedUnion('flow', [clientCredentials, jwtBearer]),
    sessionTimeout: duration.default(2 * 3_600_000).describe("the org's session timeout: a token is renewed 5 minutes before it"),
    when: z.enum(['call.start', 'call.answer', 'call.end']).default('call.end').describe('MiiTel 活動履歴登録: call.answer = 通話開始後, call.end = 通話終了後'),
    subject: z.string().min(1).default('{callType} call {number}').describe('MiiTel 件名'),
    status: z.string().min(1).default('Completed').describe("MiiTel 状況: a value of the org's Task Status picklist; Completed = activity history, Not Started = a to-do"),
    fields: z
      .object({
        dialStart: z.string().regex(API_NAME).optional().describe('DateTime field: when the call began ringing or dialling (ダイヤル開始時刻)'),
        callStart: z.string().regex(API_NAME).optional().describe('DateTime field: when it was answered (通話開始時刻)'),
        callEnd: z.string().regex(API_NAME).optional().describe('DateTime field: when it ended (通話終了時刻)'),
        memo: z.string().regex(API_NAME).optional().describe('multi-select picklist for the call memo (応対メモ)'),
      })
      .strict()
      .default({}),
    memo: z.string().min(1).optional().describe('template of the memo field\'s value; values separated by ";" are picklist values'),
    comment: commentSchema.default(DEFAULT_COMMENT).describe('MiiTel コメント: a template, or label/value lines'),
    missedComment: commentSchema.default(DEFAULT_MISSED_COMMENT).describe('MiiTel コメント(不在発信・不在着信)'),
    missedMark: z.string().min(1).default('Missed').describe('first line of a missed call\'s comment and its CallDisposition (MiiTel writes 不在)'),
    answeredDisposition: z.string().min(1).default('Answered').describe('CallDisposition of an answered call'),
    outboundContexts: z.array(z.string().min(1)).default(['from-internal']).describe('dialplan contexts in which internal phones place calls: a call starting there is outbound'),
    recordIdVariable: z.string().regex(VAR_NAME).default('SF_RECORD_ID').describe('channel variable in which click-to-call passes the record id'),
    variables: z.array(z.string().regex(VAR_NAME)).default([]).describe('further channel variables to use as merge fields, e.g. CALL_MEMO'),
    defaultCountry: countryCode.optional().describe('how numbers without + are read (default: sms.defaultCountry)'),
    timeZone: timeZone.optional().describe("for the Task's ActivityDate (default: this machine's)"),
    lookupCache: duration.default(60_000).describe('how long a number → record match is reused'),
    owners: ownersSchema.optional().describe("the Task's owner: the agent's Salesforce User (default: the integration user)"),
    memoEvent: z.string().regex(VAR_NAME).default('CallActionsMemo').describe('name of the AMI UserEvent that carries a memo after the call (CallId, Memo)'),
    startDelay: duration.default(1_000).describe('with when: call.start, wait this long for the click-to-call variable'),
    timeout: duration.default(10_000),
    retry: z
      .object({
        interval: duration.default(30_000),
        maxInterval: duration.default(15 * 60_000),
        for: duration.default(24 * 3_600_000).describe('give up (status failed) after retrying this long'),
      })
      .strict()
      .default({ interval: 30_000, maxInterval: 15 * 60_000, for: 24 * 3_600_000 }),
    usageWarning: usageWarning.default({ percent: 10 }).describe('warn in /health when fewer daily API requests than this are left'),
    concurrency: z.number().int().min(1).max(32).default(4),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.fields.memo && !c.memo) ctx.addIssue({ code: 'custom', path: ['memo'], message: 'fields.memo is set: give the memo template too, e.g. memo: "{CALL_MEMO}"' });
    if (c.memo && !c.fields.memo) ctx.addIssue({ code: 'custom', path: ['fields', 'memo'], message: 'memo is set: name the Task field it goes into' });
    const known = new Set<string>([...CALL_FIELDS, ...c.variables, c.recordIdVariable]);
    const check = (path: PropertyKey[], template: string) => {
      const unknown = [...new Set(fieldsOf(template).filter((f) => !known.has(f)))];
      if (unknown.length) {
        ctx.addIssue({ code: 'custom', path, message: `unknown merge field${unknown.length > 1 ? 's' : ''} ${unknown.map((f) => `{${f}}`).join(', ')} (known: ${[...known].sort().join(', ')}; channel variables go in "variables")` });
      }
    };
    check(['subject'], c.subject);
    if (c.memo) check(['memo'], c.memo);
    for (const key of ['comment', 'missedComment'] as const) {
      const t = c[key];
      if (typeof t === 'string') check([key], t);
      else t.forEach((line, i) => check([key, i, 'value'], line.value));
    }
  });

export type SalesforceConfig = z.output<typeof salesforceSchema>;

export const crmSchema = z.object({ salesforce: salesforceSchema.optional() }).strict();
export type CrmConfig = z.output<typeof crmSchema>;

/** The config section Salesforce logging owns (app/ merges it into the root schema). */
export const SALESFORCE_SECTIONS = { crm: crmSchema.optional().describe('CRM activity logging: crm.salesforce (docs/salesforce.md)') };
