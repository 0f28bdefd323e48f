import type { CountryCode } from 'libphonenumber-js';
import { numberForms } from '../../phone.js';
import { render } from '../../template.js';
import type { CommentTemplate, SalesforceConfig } from './config.js';
import { isWho, type Match } from './match.js';

/**
 * What a call's Task says (SF3–SF5): the subject, status, standard call fields, the configured
 * custom DateTime and memo fields, and the comment, built from the call as the store holds it.
 */

/** A call as the queue stores it: enough to write its Task again after a restart. */
export interface CallSnapshot {
  callId: string;
  direction: 'inbound' | 'outbound';
  /** The other party's number: what is looked up. */
  number: string;
  /** Epoch ms: ringing or dialling began. */
  dialStart: number;
  callStart?: number;
  callEnd?: number;
  answered: boolean;
  /** Merge fields from the call's events and the watched channel variables. */
  vars: Record<string, string>;
}

export type Phase = 'start' | 'end';

/** MiiTel's cap on the comment, labels included (Salesforce's own is 32,000). */
export const COMMENT_MAX = 30_000;
const SUBJECT_MAX = 255;
const DISPOSITION_MAX = 255;

type TaskConfig = Pick<
  SalesforceConfig,
  'subject' | 'status' | 'fields' | 'memo' | 'comment' | 'missedComment' | 'missedMark' | 'answeredDisposition' | 'timeZone'
> & {
  /** console.publicUrl: the comment ends with the call page's link, as MiiTel's carries the call history's URL (seed 003) */
  callPageBase?: string;
};

/** The console's page of a call, under console.publicUrl. */
export function callPageUrl(base: string, callId: string): string {
  return `${base.replace(/\/+$/, '')}/calls/${encodeURIComponent(callId)}`;
}

export function isMissed(phase: Phase, call: CallSnapshot): boolean {
  return phase === 'end' && !call.answered;
}

/**
 * Our side of the call: the phone that placed an outbound call; for an inbound one the device or
 * queue member that answered last (src/asterisk/agent.ts says where each comes from).
 */
export function agentOf(call: CallSnapshot): string {
  const v = call.vars;
  return call.direction === 'outbound' ? (v.caller ?? '') : (v.agent || v.answeredBy || '');
}

/** What a write adds to the call's own data: how numbers are read, and the owner resolved for it. */
export interface WriteContext {
  defaultCountry?: CountryCode;
  ownerId?: string;
}

/** The merge fields of a call's templates. */
export function mergeFields(phase: Phase, call: CallSnapshot, match: Match | undefined, cfg: Pick<TaskConfig, 'missedMark'>, ctx: WriteContext = {}): Record<string, string> {
  const iso = (t: number | undefined) => (t === undefined ? '' : new Date(t).toISOString());
  const v = call.vars;
  const forms: Record<string, string> = {};
  for (const [name, value] of [['number', call.number], ['caller', v.caller], ['called', v.called ?? v.did]] as const) {
    const f = numberForms(value, ctx.defaultCountry);
    // in a Task, what is no phone number (an extension, "anonymous") stays as it is
    forms[`${name}.e164`] = f.e164 || (value ?? '');
    forms[`${name}.national`] = f.national || (value ?? '');
  }
  return {
    ...v,
    ...forms,
    direction: call.direction,
    callType: call.direction === 'outbound' ? 'Outbound' : 'Inbound',
    number: call.number,
    agent: agentOf(call),
    dialStart: iso(call.dialStart),
    callStart: iso(call.callStart),
    callEnd: iso(call.callEnd),
    missed: isMissed(phase, call) ? cfg.missedMark : '',
    recordId: match?.recordId ?? '',
    recordType: match?.recordType ?? '',
    matchRule: match?.rule ?? '',
  };
}

/**
 * The comment: a template, or "Label: value" lines (lines whose value is empty are left out).
 * Cut to `max` characters, labels included; a cut comment ends with "…".
 */
export function renderComment(template: CommentTemplate, vars: Record<string, string>, max: number = COMMENT_MAX, firstLine?: string): string {
  const body =
    typeof template === 'string'
      ? render(template, vars).text
      : template
          .map((line) => ({ label: line.label, value: render(line.value, vars).text.trim() }))
          .filter((line) => line.value !== '')
          .map((line) => (line.label ? `${line.label}: ${line.value}` : line.value))
          .join('\n');
  return cut(firstLine ? `${firstLine}\n${body}` : body, max);
}

/** At most `max` characters (code points, so a surrogate pair is never split). */
export function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  const chars = Array.from(text);
  if (chars.length <= max) return text;
  return chars.slice(0, max - 1).join('') + '…';
}

/**
 * The Task body for a create or an update. An update leaves out what only a create sets (the
 * record it hangs on, TaskSubtype) so that a record fixed by hand in Salesforce stays fixed.
 * OwnerId is on every write whose agent maps to a User: the agent who talked last owns the Task.
 */
export function taskFields(op: 'create' | 'update', phase: Phase, call: CallSnapshot, match: Match | undefined, cfg: TaskConfig, ctx: WriteContext = {}): Record<string, unknown> {
  const vars = mergeFields(phase, call, match, cfg, ctx);
  const link = cfg.callPageBase ? callPageUrl(cfg.callPageBase, call.callId) : '';
  vars.callUrl = link;
  const missed = isMissed(phase, call);
  const comment = (text: (max: number) => string) => (link && !text(COMMENT_MAX).includes(link) ? `${text(COMMENT_MAX - link.length - 1)}\n${link}` : text(COMMENT_MAX));
  const f: Record<string, unknown> = {
    Subject: cut(render(cfg.subject, vars).text, SUBJECT_MAX),
    Status: cfg.status,
    ActivityDate: localDate(call.dialStart, cfg.timeZone),
    CallType: vars.callType,
    CallObject: call.callId,
    Description: missed
      ? comment((max) => renderComment(cfg.missedComment, vars, max, cfg.missedMark))
      : comment((max) => renderComment(cfg.comment, vars, max)),
  };
  if (ctx.ownerId) f.OwnerId = ctx.ownerId;
  if (op === 'create') {
    f.TaskSubtype = 'Call';
    if (match?.recordId) f[isWho(match.recordType) ? 'WhoId' : 'WhatId'] = match.recordId;
  }
  if (phase === 'end') {
    const talk = Number(call.vars.talkSeconds);
    f.CallDurationInSeconds = call.answered && Number.isFinite(talk) ? Math.max(0, Math.round(talk)) : 0;
    f.CallDisposition = cut(missed ? cfg.missedMark : cfg.answeredDisposition, DISPOSITION_MAX);
  }
  const custom = cfg.fields;
  if (custom.dialStart) f[custom.dialStart] = new Date(call.dialStart).toISOString();
  if (custom.callStart && call.callStart !== undefined) f[custom.callStart] = new Date(call.callStart).toISOString();
  if (custom.callEnd && call.callEnd !== undefined) f[custom.callEnd] = new Date(call.callEnd).toISOString();
  if (custom.memo && cfg.memo && phase === 'end') {
    const memo = render(cfg.memo, vars).text.trim();
    if (memo) f[custom.memo] = memo;
  }
  return f;
}

/** YYYY-MM-DD of an instant in a time zone (the machine's when none is given). */
export function localDate(t: number, timeZone?: string): string {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(new Date(t));
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  return `${get('year')}-${get('month')}-${get('day')}`;
}
