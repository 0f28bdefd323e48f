import type { CallEvent } from '../asterisk/call-event-types.js';
import type { RunObserver } from '../calls/runner.js';
import type { CallSession } from '../calls/session.js';

/**
 * What happened to a call, as the service saw it: call events (start, queue join, # exit, answer,
 * end), stages entered and left, each step and its result. Kept in memory for the most recent
 * calls (the logs in the store hold the rest: SMS, hook runs, routing, Salesforce), so the call
 * page of a call from before a restart shows the logs but not these lines.
 */
export interface TimelineEntry {
  at: number;
  kind: 'event' | 'stage' | 'step';
  /** `queue.key-exit`, `stage entered`, `sms → next` … */
  what: string;
  stage?: string;
  step?: string;
  result?: string;
  detail?: Record<string, string>;
}

const KEEP_CALLS = 1000;
const KEEP_ENTRIES = 200;

/** Call-event fields worth showing beside the kind (no merge fields the caller typed). */
const EVENT_DETAIL = ['caller', 'called', 'did', 'queue', 'position', 'answeredBy', 'duration', 'talkSeconds', 'cause', 'causeText'];

export class CallTimeline implements RunObserver {
  private readonly calls = new Map<string, TimelineEntry[]>();
  private readonly seen = new Set<string>();

  of(callId: string): TimelineEntry[] {
    return [...(this.calls.get(callId) ?? [])];
  }

  private add(callId: string, e: TimelineEntry): void {
    let list = this.calls.get(callId);
    if (!list) {
      if (this.calls.size >= KEEP_CALLS) this.calls.delete(this.calls.keys().next().value!);
      this.calls.set(callId, (list = []));
    }
    if (list.length < KEEP_ENTRIES) list.push(e);
  }

  callEvent(ev: CallEvent): void {
    const key = `${ev.callId}/${ev.key}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    if (this.seen.size > KEEP_CALLS * 20) this.seen.clear();
    const detail: Record<string, string> = {};
    for (const k of EVENT_DETAIL) if (ev.vars[k]) detail[k] = ev.vars[k]!;
    this.add(ev.callId, { at: ev.at, kind: 'event', what: ev.kind, detail });
  }

  stageEntered(s: CallSession): void {
    this.add(s.callId, { at: Date.now(), kind: 'stage', what: 'stage entered', stage: s.stage });
  }

  stepStarted(s: CallSession, step: { kind: string; where: string }): void {
    this.add(s.callId, { at: Date.now(), kind: 'step', what: `${step.kind} started`, stage: s.stage, step: step.where });
  }

  stepDone(s: CallSession, step: { kind: string; where: string }, result: string): void {
    this.add(s.callId, { at: Date.now(), kind: 'step', what: `${step.kind} → ${result}`, stage: s.stage, step: step.where, result });
  }

  stageEnded(s: CallSession, outcome: string): void {
    this.add(s.callId, { at: Date.now(), kind: 'stage', what: `stage ${outcome}`, stage: s.stage, result: outcome });
  }
}
