import { Writable } from 'node:stream';
import pino from 'pino';
import { CallSession } from '../../src/calls/session.js';
import type { ChannelHandle, ContinueTarget, PlaybackOutcome } from '../../src/asterisk/ari.js';
import type { ChannelEventType, EventOf, StasisStart } from '../../src/asterisk/ari-events.js';

/**
 * A channel that records what the service asked Asterisk to do, for unit tests of steps that
 * drive a call (what the e2e tests then check against a real Asterisk). Playback takes `playMs`
 * unless stopped; keys arrive with press().
 */
export type Op =
  | { op: 'answer' }
  | { op: 'play'; media: string; outcome?: PlaybackOutcome }
  | { op: 'setVar'; name: string; value: string }
  | { op: 'continue'; target: ContinueTarget }
  | { op: 'hangup'; reason?: string };

export interface FakeChannel extends ChannelHandle {
  readonly ops: Op[];
  playMs: number;
  /** what the real handle sums from its requests; a test that delays one adds to it */
  restMs: number;
  press(digits: string): void;
  /** The caller hangs up. */
  hangUp(): void;
}

export function fakeChannel(id = 'chan-1'): FakeChannel {
  const handlers = new Map<ChannelEventType, Set<(ev: never) => void>>();
  const emit = <T extends ChannelEventType>(type: T, ev: EventOf<T>) => {
    for (const fn of [...(handlers.get(type) ?? [])]) (fn as (e: EventOf<T>) => void)(ev);
  };
  const ops: Op[] = [];
  const ch: FakeChannel = {
    id,
    ops,
    playMs: 0,
    restMs: 0,
    on(type, fn) {
      let set = handlers.get(type);
      if (!set) handlers.set(type, (set = new Set()));
      set.add(fn as (ev: never) => void);
      const added = set;
      return () => void added.delete(fn as (ev: never) => void);
    },
    async answer() {
      ops.push({ op: 'answer' });
    },
    async hangup(reason) {
      ops.push({ op: 'hangup', reason });
      emit('StasisEnd', { type: 'StasisEnd', application: 'call-actions', timestamp: new Date().toISOString(), channel: { id } as never });
    },
    async continueInDialplan(target = {}) {
      ops.push({ op: 'continue', target });
      emit('StasisEnd', { type: 'StasisEnd', application: 'call-actions', timestamp: new Date().toISOString(), channel: { id } as never });
    },
    play(media, signal) {
      const entry: Op = { op: 'play', media };
      ops.push(entry);
      return new Promise((resolve) => {
        const finish = (o: PlaybackOutcome) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          entry.outcome = o;
          resolve(o);
        };
        const onAbort = () => finish('cancelled');
        const timer = setTimeout(() => finish('done'), ch.playMs);
        if (signal?.aborted) return onAbort();
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    },
    async getVar() {
      return undefined;
    },
    async setVar(name, value) {
      ops.push({ op: 'setVar', name, value });
    },
    // one request to Asterisk; recorded per variable, as the dialplan sees them
    async setVars(vars) {
      for (const [name, value] of Object.entries(vars)) ops.push({ op: 'setVar', name, value });
    },
    release() {},
    press(digits) {
      for (const digit of digits) {
        emit('ChannelDtmfReceived', { type: 'ChannelDtmfReceived', application: 'call-actions', timestamp: '', channel: { id } as never, digit, duration_ms: 100 });
      }
    },
    hangUp() {
      emit('ChannelHangupRequest', { type: 'ChannelHangupRequest', application: 'call-actions', timestamp: '', channel: { id } as never });
    },
  };
  return ch;
}

export interface FakeCall {
  session: CallSession;
  channel: FakeChannel;
  /** The call's log lines, parsed. */
  lines: Array<Record<string, unknown>>;
}

export function fakeCall(opts: { caller?: string; callerName?: string; exten?: string; args?: string[]; stage?: string; state?: string } = {}): FakeCall {
  const channel = fakeChannel();
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const log = pino({ level: 'debug' }, sink);
  const stage = opts.stage ?? 'welcome';
  const start: StasisStart = {
    type: 'StasisStart',
    application: 'call-actions',
    timestamp: new Date().toISOString(),
    args: [stage, ...(opts.args ?? [])],
    channel: {
      id: channel.id,
      name: 'PJSIP/tester-00000001',
      state: opts.state ?? 'Ring',
      caller: { name: opts.callerName ?? 'Test Caller', number: opts.caller ?? '05101234567' },
      connected: { name: '', number: '' },
      dialplan: { context: 'from-test', exten: opts.exten ?? '8503030303', priority: 1 },
    },
  };
  const session = new CallSession(stage, '1234567.213', channel, start, log);
  return { session, channel, lines };
}
