import { randomUUID } from 'node:crypto';
import { EVENT_FIELDS, type CallEventKind } from '../asterisk/call-event-types.js';
import { conditionHolds, prepare, send, type AttemptReport } from './attempt.js';
import type { CountryCode } from 'libphonenumber-js';
import { targetsNumber, type Hook } from './config.js';
import type { LoggedRequest } from '../http/redact.js';

/**
 * `call-actions hooks test <hook>`: the request a hook would send for a made-up call, shown before
 * it is ever sent (the seed's admins test by placing real calls and asking the SMS vendor what
 * arrived). Nothing is written to the store; with `send` the request goes out once, without
 * retries, and the answer is classified and extracted exactly as a live run would.
 */

/** Plausible values for each event's own fields, so every template renders something. */
const SAMPLE: Record<string, string> = {
  answeredBy: '2601',
  agent: '2601',
  agentName: 'Taro Tanaka',
  agentChannel: 'PJSIP/2601-0000000a',
  firstAgent: '2601',
  agents: '2601',
  answerSeconds: '12',
  duration: '95',
  talkSeconds: '83',
  answered: 'yes',
  cause: '16',
  causeText: 'Normal Clearing',
  queue: 'support',
  position: '1',
  key: '#',
  wait: '42',
  originalPosition: '2',
  stage: 'queue-exit',
};

export interface DryRunInput {
  hook: Hook;
  caller: string;
  called: string;
  /** --var name=value: stage arguments, extracted variables, or overrides of the samples. */
  vars?: Record<string, string>;
  secrets: readonly string[];
  send?: boolean;
  /** Show secrets instead of [redacted] in the printed request. */
  showSecrets?: boolean;
  defaultCountry?: CountryCode;
}

export interface DryRunResult {
  vars: Record<string, string>;
  condition: { ok: boolean; value: string };
  targeted: boolean;
  request: LoggedRequest;
  report?: AttemptReport;
}

export function sampleVars(hook: Hook, caller: string, called: string, extra: Record<string, string> = {}): Record<string, string> {
  const own = hook.on === 'inline' ? [] : EVENT_FIELDS[hook.on as CallEventKind];
  const samples = Object.fromEntries(own.map((f) => [f, SAMPLE[f] ?? '']));
  return {
    ...samples,
    callId: `dry-run-${Date.now()}`,
    caller,
    TEL: caller,
    callerName: 'Dry Run',
    called,
    did: called,
    channelId: 'dry-run',
    event: hook.on,
    time: new Date().toISOString(),
    ...extra,
  };
}

export async function dryRun(input: DryRunInput): Promise<DryRunResult> {
  const { hook } = input;
  const vars = sampleVars(hook, input.caller, input.called, input.vars);
  const condition = conditionHolds(hook, vars);
  const targeted = targetsNumber(hook, input.called, input.defaultCountry);
  const runId = `dry-run-${randomUUID()}`;
  const { built, logged } = prepare(hook, vars, runId, input.showSecrets ? [] : input.secrets);
  const result: DryRunResult = { vars, condition, targeted, request: logged };
  if (input.send) result.report = await send(hook, built, logged, { secrets: input.secrets });
  return result;
}

export function formatDryRun(hook: Hook, r: DryRunResult, sent: boolean): string {
  const lines: string[] = [];
  lines.push(`hook "${hook.name}" on ${hook.on}, order ${hook.order}${hook.numbers ? `, numbers: ${hook.numbers.join(', ')}` : ''}`);
  if (!r.targeted) lines.push(`note: the called number ${r.vars.called} is not in the hook's numbers; a real call to it would not run this hook`);
  if (hook.when) {
    lines.push(`condition: "${hook.when.value}" → "${r.condition.value}" ${r.condition.ok ? 'matches' : 'does NOT match'} ${String(hook.when.match)}`);
  }
  lines.push('');
  lines.push(`${r.request.method} ${r.request.url}`);
  for (const [k, v] of Object.entries(r.request.headers)) lines.push(`${k}: ${v}`);
  if (r.request.body !== undefined) lines.push('', r.request.body);
  if (r.request.missing?.length) lines.push('', `merge fields without a value (sent empty): ${r.request.missing.join(', ')}`);
  lines.push('');
  if (!sent) {
    lines.push('(not sent; add --send to send it once)');
    return lines.join('\n') + '\n';
  }
  const rep = r.report!;
  if (rep.status !== undefined) {
    lines.push(`answer: HTTP ${rep.status} in ${rep.latencyMs} ms → ${rep.outcome} (${rep.reason})`);
    if (rep.body) lines.push(rep.body.length > 2000 ? rep.body.slice(0, 2000) + '…' : rep.body);
  } else {
    lines.push(`no answer after ${rep.latencyMs} ms: ${rep.error ?? rep.reason} → ${rep.outcome} (${rep.reason})`);
  }
  if (rep.outcome === 'retry') lines.push(`a live run would retry (${hook.retry.count} retries, every ${hook.retry.intervalMs / 1000} s)`);
  const ex = Object.entries(rep.extracted);
  if (ex.length) lines.push(`extracted: ${ex.map(([k, v]) => `${k}=${v}`).join(', ')}`);
  if (rep.notFound.length) lines.push(`not found in the answer: ${rep.notFound.join(', ')}`);
  return lines.join('\n') + '\n';
}
