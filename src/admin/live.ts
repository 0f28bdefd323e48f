import { EventEmitter } from 'node:events';
import type { RunObserver } from '../calls/runner.js';
import type { CallSession } from '../calls/session.js';

/**
 * The callers held in a stage right now, for the console's live page: who (the caller's number),
 * which stage, which step and since when. Fed by the stage runner as an observer; emits `change`
 * whenever the list changes, and a call leaves it when its stage ends (hang-up included).
 */
export interface LiveCall {
  callId: string;
  channelId: string;
  caller: string;
  stage: string;
  /** the step now running, e.g. `sms` (its kind) and where it is written */
  step?: string;
  stepWhere?: string;
  /** epoch ms */
  enteredAt: number;
  stepSince?: number;
}

export class LiveCalls extends EventEmitter<{ change: [] }> implements RunObserver {
  private readonly calls = new Map<CallSession, LiveCall>();

  list(): LiveCall[] {
    return [...this.calls.values()].sort((a, b) => a.enteredAt - b.enteredAt);
  }

  stageEntered(s: CallSession): void {
    this.calls.set(s, { callId: s.callId, channelId: s.channel.id, caller: s.vars.caller ?? '', stage: s.stage, enteredAt: Date.now() });
    // a hang-up ends the session at once, before the running step has noticed
    s.ending.addEventListener('abort', () => this.stageEnded(s));
    this.emit('change');
  }

  stepStarted(s: CallSession, step: { kind: string; where: string }): void {
    const c = this.calls.get(s);
    if (!c) return;
    c.step = step.kind;
    c.stepWhere = step.where;
    c.stepSince = Date.now();
    this.emit('change');
  }

  stageEnded(s: CallSession): void {
    if (this.calls.delete(s)) this.emit('change');
  }
}
