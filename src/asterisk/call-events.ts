import { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';
import { AgentTrail } from './agent.js';
import type { AmiMessage } from './ami.js';
import type { CountryCode } from 'libphonenumber-js';
import { numberFields } from '../phone.js';
import { NUMBER_FIELDS, type CallEvent, type CallEventKind } from './call-event-types.js';

/**
 * Turns AMI's per-channel events and the runner's "stage entered" into one stream of call events
 * per linkedid (CA1). AMI sees every call, including those that never enter Stasis (an agent
 * answering from a queue, an abandon); ARI adds what only a stage knows (its arguments).
 *
 * Asterisk facts this relies on (Asterisk 22, checked with real SIP calls):
 * - the first channel of a call has uniqueid == linkedid, and its Newchannel carries the dialled
 *   extension (the DID) and the caller ID;
 * - a key exit from a queue (queues.conf `context=`) is a QueueCallerLeave whose channel already
 *   stands in that exit context at the digit's extension; there is no QueueCallerAbandon for it;
 * - a caller hanging up while queued gives QueueCallerAbandon, then QueueCallerLeave, then Hangup
 *   with cause 0;
 * - a member answering gives DialEnd with DialStatus ANSWER (and AgentConnect) for the caller;
 *   who answered (a device, a queue member, a pickup, a transfer) is read as agent.ts explains.
 * Each event fires at most once per occurrence; the key lets consumers drop repeats across
 * restarts, when this in-memory state is gone.
 */

export interface AmiSource {
  on(event: string, fn: (ev: AmiMessage) => void): () => void;
  onStatus?(fn: (up: boolean) => void): void;
  list?(action: Record<string, string>): Promise<AmiMessage[]>;
}

/** What the stage runner reports when a channel enters a stage. */
export interface StageEntry {
  callId: string;
  channelId: string;
  stage: string;
  /** The session's merge fields: caller, called and the Stasis() arguments. */
  vars: Readonly<Record<string, string>>;
  /** The dialplan extension the channel stood at when it entered (a digit for a queue key exit). */
  exten?: string;
}

interface QueueVisit {
  queue: string;
  n: number;
  joinedAt: number;
  /** The dialplan context at join; a key exit moves the channel to the queue's exit context. */
  context: string;
  position: string;
  ended: boolean;
  abandoned: boolean;
}

interface CallState {
  callId: string;
  startedAt: number;
  origin?: string;
  caller: string;
  callerName: string;
  did: string;
  channels: Set<string>;
  answeredAt?: number;
  /** Every device that answered, in order: {agent} is the last, {firstAgent} the first. */
  agents: AgentTrail;
  cause?: string;
  causeText?: string;
  /** Per channel, its current (or last) queue visit. */
  visits: Map<string, QueueVisit>;
  joins: number;
  stageVisits: Map<string, number>;
  fired: Set<string>;
  lastSeen: number;
  /** {caller.e164} and the like, for the caller and DID they were made from (a parse costs ~20 µs). */
  numberForms?: { of: string; fields: Record<string, string> };
}

const SINGLE_KEY = /^[0-9*#]$/;
/** A call nothing was heard of for this long is forgotten: its Hangup never came. */
export const IDLE_CALL_MS = 4 * 3_600_000;
/**
 * Without AMI no call is ever seen to end, only to enter stages: a call is forgotten this long
 * after its last stage (a stage it enters later counts its visits from 1 again).
 */
export const IDLE_CALL_NO_AMI_MS = 15 * 60_000;
/** Past this many calls followed at once, the oldest is forgotten: memory stays bounded whatever happens. */
export const MAX_CALLS = 50_000;

export class CallEventTracker extends EventEmitter<{ event: [CallEvent] }> {
  private readonly calls = new Map<string, CallState>();
  private readonly unsubscribe: Array<() => void> = [];
  private readonly sweeper: NodeJS.Timeout;
  private withAmi = false;
  private evicted = 0;

  constructor(
    private readonly log?: Logger,
    private readonly now: () => number = Date.now,
    private readonly maxCalls: number = MAX_CALLS,
    /** How numbers without + are read for `{caller.e164}` and the like (sms.defaultCountry). */
    private readonly defaultCountry?: CountryCode,
  ) {
    super();
    this.sweeper = setInterval(() => this.prune(), 60_000);
    this.sweeper.unref();
  }

  /** Calls being followed right now. */
  get size(): number {
    return this.calls.size;
  }

  attachAmi(ami: AmiSource): void {
    this.withAmi = true;
    const handlers: Record<string, (ev: AmiMessage) => void> = {
      newchannel: (ev) => this.onNewchannel(ev),
      newcallerid: (ev) => this.onCallerId(ev),
      dialbegin: (ev) => this.calls.get(ev.linkedid ?? '')?.agents.dialBegan(ev),
      dialend: (ev) => ev.dialstatus === 'ANSWER' && this.onDialAnswer(ev),
      agentconnect: (ev) => this.onAgentConnect(ev),
      pickup: (ev) => this.onPickup(ev),
      attendedtransfer: (ev) => this.onAttendedTransfer(ev),
      queuecallerjoin: (ev) => this.onQueueJoin(ev),
      queuecallerabandon: (ev) => this.onQueueAbandon(ev),
      queuecallerleave: (ev) => this.onQueueLeave(ev),
      hangup: (ev) => this.onHangup(ev),
    };
    for (const [name, fn] of Object.entries(handlers)) {
      this.unsubscribe.push(
        ami.on(name, (ev) => {
          try {
            fn(ev);
          } catch (e) {
            this.log?.error({ err: e, amiEvent: name }, 'call event tracker failed on an AMI event');
          }
        }),
      );
    }
    // Hangups missed while the link was down would keep calls open forever: ask what still exists.
    if (ami.onStatus && ami.list) {
      const list = ami.list.bind(ami);
      ami.onStatus((up) => {
        if (up && this.calls.size) void this.reconcile(list);
      });
    }
  }

  detach(): void {
    clearInterval(this.sweeper);
    for (const u of this.unsubscribe.splice(0)) u();
  }

  /** Drops calls idle for longer than `maxIdleMs` without an end event: their end was never seen. */
  prune(maxIdleMs: number = this.withAmi ? IDLE_CALL_MS : IDLE_CALL_NO_AMI_MS): number {
    const limit = this.now() - maxIdleMs;
    let n = 0;
    for (const [id, call] of this.calls) {
      if (call.lastSeen < limit) {
        this.calls.delete(id);
        n++;
      }
    }
    if (n) this.log?.info({ calls: n }, 'call events: forgot calls whose end was never seen');
    return n;
  }

  /** From the stage runner; a stage entered at a digit with a queue= argument is also a key exit. */
  stageEntered(entry: StageEntry): void {
    const call = this.callFor(entry.callId, {
      caller: entry.vars.caller ?? '',
      callerName: entry.vars.callerName ?? '',
      did: entry.vars.called ?? '',
    });
    // ARI's JSON carries a caller ID whole; AMI's line format cuts one at a newline (a SIP From
    // user of "%0A…" decodes to one), so once a stage has seen the call, its values win.
    if (entry.vars.caller !== undefined) call.caller = entry.vars.caller;
    if (entry.vars.callerName !== undefined) call.callerName = entry.vars.callerName;
    if (!call.did && entry.vars.called) call.did = entry.vars.called;
    // A call already under way when this process started: its end is this channel's hangup.
    if (!call.origin) call.channels.add(entry.channelId);
    const visitKey = `${entry.channelId}/${entry.stage}`;
    const n = (call.stageVisits.get(visitKey) ?? 0) + 1;
    call.stageVisits.set(visitKey, n);
    this.fire(call, 'stage.entered', `${entry.channelId}/${entry.stage}/${n}`, entry.channelId, { ...entry.vars, stage: entry.stage });

    const queue = entry.vars.queue;
    if (queue && entry.exten && SINGLE_KEY.test(entry.exten)) {
      let visit = call.visits.get(entry.channelId);
      if (!visit || visit.queue !== queue) {
        // Joined before this process was watching (or without AMI): the stage alone tells.
        visit = { queue, n: call.joins + 1, joinedAt: call.startedAt, context: '', position: '', ended: false, abandoned: false };
        call.visits.set(entry.channelId, visit);
      }
      visit.ended = true;
      if (!visit.abandoned) this.keyExit(call, entry.channelId, visit, entry.exten, entry.vars.position, entry.vars.wait);
    }
  }

  /** From the stage runner: a step whose `when:` did not hold, once per step and stage visit. */
  stepSkipped(entry: { callId: string; channelId: string; stage: string; step: string; reason: string }): void {
    const call = this.calls.get(entry.callId);
    if (!call) return; // the stage's own stage.entered made it known, unless it was forgotten since
    const n = call.stageVisits.get(`${entry.channelId}/${entry.stage}`) ?? 1;
    this.fire(call, 'step.skipped', `${entry.channelId}/${entry.stage}/${n}/${entry.step}`, entry.channelId, {
      stage: entry.stage,
      skippedStep: entry.step,
      skipReason: entry.reason,
    });
  }

  /**
   * An event that happens after or beside the call (an SMS delivery receipt, which may come
   * hours after the call ended and was forgotten): with the call's own fields when it is still
   * followed, else with what the reporter knows of it. `occurrence` names it for consumers that
   * drop repeats.
   */
  report(kind: CallEventKind, callId: string, occurrence: string, own: Record<string, string>, known: { caller?: string; did?: string } = {}): void {
    const followed = this.calls.get(callId);
    const call = followed ?? this.newCall(callId, { caller: known.caller ?? '', callerName: '', did: known.did ?? '' });
    this.fire(call, kind, occurrence, call.origin ?? '', own);
  }

  private onNewchannel(ev: AmiMessage): void {
    const uniqueid = ev.uniqueid;
    if (!uniqueid) return;
    const callId = ev.linkedid || uniqueid;
    const call = this.callFor(callId);
    call.channels.add(uniqueid);
    if (uniqueid === callId && !call.origin) {
      call.origin = uniqueid;
      call.caller = clean(ev.calleridnum);
      call.callerName = clean(ev.calleridname);
      call.did = ev.exten && ev.exten !== 's' ? ev.exten : call.did;
      call.startedAt = this.now();
      // The dialplan context the call began in tells an internal phone's outbound call from an inbound one.
      this.fire(call, 'call.start', '', uniqueid, { context: ev.context ?? '' });
    }
  }

  private onCallerId(ev: AmiMessage): void {
    const call = this.calls.get(ev.linkedid ?? '');
    if (!call || ev.uniqueid !== call.origin) return;
    call.caller = clean(ev.calleridnum);
    call.callerName = clean(ev.calleridname);
  }

  private onDialAnswer(ev: AmiMessage): void {
    const call = this.calls.get(ev.linkedid ?? '');
    if (!call) return;
    call.agents.dialAnswered(ev);
    this.onAnswer(call, ev);
  }

  private onAgentConnect(ev: AmiMessage): void {
    const call = this.calls.get(ev.linkedid ?? '');
    if (!call) return;
    call.agents.queueConnected(ev);
    this.onAnswer(call, ev);
  }

  /** Another phone took over a ringing leg of the call (Pickup, PickupChan). */
  private onPickup(ev: AmiMessage): void {
    const call = this.calls.get(ev.targetlinkedid ?? '');
    if (!call || !ev.channel || !ev.targetuniqueid) return;
    call.agents.pickedUp(ev.channel, ev.targetuniqueid);
  }

  /** The caller's call (the transferee's) now talks to the device the transferring phone called. */
  private onAttendedTransfer(ev: AmiMessage): void {
    if ((ev.result ?? '').toLowerCase() !== 'success') return;
    const call = this.calls.get(ev.transfereelinkedid ?? '');
    if (!call || !ev.transfertargetchannel) return;
    call.agents.transferredTo(ev.transfertargetchannel, ev.transfertargetuniqueid ?? '');
  }

  private onAnswer(call: CallState, ev: AmiMessage): void {
    if (call.answeredAt !== undefined) return;
    call.answeredAt = this.now();
    const who = call.agents.fields();
    this.fire(call, 'call.answer', '', ev.uniqueid ?? '', {
      answeredBy: who.agent || ev.destchannel || '',
      agent: who.agent,
      agentName: who.agentName,
      agentChannel: who.agentChannel,
      answerSeconds: seconds(call.answeredAt - call.startedAt),
    });
  }

  private onQueueJoin(ev: AmiMessage): void {
    const uniqueid = ev.uniqueid ?? '';
    const call = this.calls.get(ev.linkedid ?? '') ?? (uniqueid ? this.callFor(ev.linkedid || uniqueid) : undefined);
    if (!call || !ev.queue) return;
    if (!call.origin && uniqueid) call.channels.add(uniqueid);
    call.joins += 1;
    const visit: QueueVisit = {
      queue: ev.queue,
      n: call.joins,
      joinedAt: this.now(),
      context: ev.context ?? '',
      position: ev.position ?? '',
      ended: false,
      abandoned: false,
    };
    call.visits.set(uniqueid, visit);
    this.fire(call, 'queue.join', `${uniqueid}/${ev.queue}/${visit.n}`, uniqueid, { queue: ev.queue, position: visit.position });
  }

  private onQueueAbandon(ev: AmiMessage): void {
    const call = this.calls.get(ev.linkedid ?? '');
    const visit = call?.visits.get(ev.uniqueid ?? '');
    if (!call || !visit || visit.queue !== ev.queue) return;
    visit.abandoned = true;
    const wait = ev.holdtime ?? seconds(this.now() - visit.joinedAt);
    this.fire(call, 'queue.abandon', `${ev.uniqueid}/${visit.queue}/${visit.n}`, ev.uniqueid ?? '', {
      queue: visit.queue,
      position: ev.position ?? visit.position,
      originalPosition: ev.originalposition ?? visit.position,
      wait,
    });
  }

  private onQueueLeave(ev: AmiMessage): void {
    const call = this.calls.get(ev.linkedid ?? '');
    const visit = call?.visits.get(ev.uniqueid ?? '');
    if (!call || !visit || visit.queue !== ev.queue || visit.ended) return;
    visit.ended = true;
    if (visit.abandoned) return;
    const key = ev.exten ?? '';
    // Answered or timed-out callers leave from where they joined; a key exit jumps to the queue's
    // exit context, at the extension named by the digit.
    if (SINGLE_KEY.test(key) && (ev.context ?? '') !== visit.context) {
      this.keyExit(call, ev.uniqueid ?? '', visit, key, visit.position, undefined);
    }
  }

  private keyExit(call: CallState, channel: string, visit: QueueVisit, key: string, position?: string, wait?: string): void {
    this.fire(call, 'queue.key-exit', `${channel}/${visit.queue}/${visit.n}`, channel, {
      queue: visit.queue,
      key,
      position: position || visit.position,
      wait: wait || seconds(this.now() - visit.joinedAt),
    });
  }

  private onHangup(ev: AmiMessage): void {
    const call = this.calls.get(ev.linkedid ?? '');
    if (!call || !ev.uniqueid) return;
    call.channels.delete(ev.uniqueid);
    if (ev.uniqueid === call.origin || call.cause === undefined) {
      call.cause = ev.cause ?? '';
      call.causeText = ev['cause-txt'] ?? '';
    }
    if (call.channels.size === 0) this.end(call);
  }

  private end(call: CallState): void {
    const now = this.now();
    this.fire(call, 'call.end', '', call.origin ?? '', {
      ...call.agents.fields(),
      duration: seconds(now - call.startedAt),
      talkSeconds: call.answeredAt === undefined ? '0' : seconds(now - call.answeredAt),
      answered: call.answeredAt === undefined ? 'no' : 'yes',
      cause: call.cause ?? '',
      causeText: call.causeText ?? '',
    });
    this.calls.delete(call.callId);
  }

  private async reconcile(list: (a: Record<string, string>) => Promise<AmiMessage[]>): Promise<void> {
    let live: AmiMessage[];
    try {
      live = await list({ action: 'CoreShowChannels' });
    } catch (e) {
      this.log?.warn({ err: (e as Error).message }, 'call events: cannot list channels after the AMI reconnect');
      return;
    }
    const alive = new Set(live.map((c) => c.uniqueid));
    for (const call of [...this.calls.values()]) {
      for (const ch of [...call.channels]) if (!alive.has(ch)) call.channels.delete(ch);
      if (call.channels.size === 0) {
        call.causeText ||= 'ended while the AMI link was down';
        this.end(call);
      }
    }
  }

  /** Maps keep insertion order: the first key is the call followed longest. */
  private evictOldest(): void {
    const oldest = this.calls.keys().next().value;
    if (oldest !== undefined) this.calls.delete(oldest);
    if (this.evicted++ % 1000 === 0) this.log?.warn({ followed: this.calls.size, evicted: this.evicted }, `call events: more than ${this.maxCalls} calls at once; forgetting the oldest`);
  }

  private callFor(callId: string, seed?: { caller: string; callerName: string; did: string }): CallState {
    let call = this.calls.get(callId);
    if (!call) {
      call = this.newCall(callId, seed);
      this.calls.set(callId, call);
      if (this.calls.size > this.maxCalls) this.evictOldest();
    }
    call.lastSeen = this.now();
    return call;
  }

  private newCall(callId: string, seed?: { caller: string; callerName: string; did: string }): CallState {
    return {
      callId,
      startedAt: this.now(),
      caller: seed?.caller ?? '',
      callerName: seed?.callerName ?? '',
      did: seed?.did ?? '',
      channels: new Set(),
      agents: new AgentTrail(),
      visits: new Map(),
      joins: 0,
      stageVisits: new Map(),
      fired: new Set(),
      lastSeen: this.now(),
    };
  }

  private fire(call: CallState, kind: CallEventKind, occurrence: string, channelId: string, own: Record<string, string>): void {
    const key = occurrence ? `${call.callId}/${kind}/${occurrence}` : `${call.callId}/${kind}`;
    if (call.fired.has(key)) return;
    call.fired.add(key);
    const at = this.now();
    call.lastSeen = at;
    const base = {
      callId: call.callId,
      caller: call.caller,
      // seed 000 (BIZTEL) writes {TEL} for the caller's number
      TEL: call.caller,
      callerName: call.callerName,
      called: call.did,
      did: call.did,
      channelId,
      event: kind,
      time: new Date(at).toISOString(),
    };
    const of = `${call.caller}\n${call.did}`;
    if (call.numberForms?.of !== of) call.numberForms = { of, fields: numberFields(base, NUMBER_FIELDS, this.defaultCountry) };
    const ev: CallEvent = { kind, callId: call.callId, key, at, vars: { ...own, ...base, ...call.numberForms.fields } };
    this.log?.debug({ callId: call.callId, event: kind, key }, 'call event');
    this.emit('event', ev);
  }
}

/** Asterisk writes "<unknown>" for a missing caller ID. */
function clean(v: string | undefined): string {
  return !v || v === '<unknown>' ? '' : v;
}

function seconds(ms: number): string {
  return String(Math.max(0, Math.round(ms / 1000)));
}
