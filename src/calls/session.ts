import type { Logger } from '../log.js';
import type { CountryCode } from 'libphonenumber-js';
import { maskNumber } from '../log.js';
import { defineNumberFields } from '../phone.js';
import type { ChannelHandle } from '../asterisk/ari.js';
import type { StasisStart } from '../asterisk/ari-events.js';
import type { Cancellation } from '../http/exchange.js';

/**
 * The reason every ended call's signal carries. abort() without one builds a new DOMException,
 * stack trace included, for every call; whoever looks at the reason only needs its name.
 */
const CALL_ENDED = new DOMException('the call left the stage', 'AbortError');
const INTERRUPTED = new DOMException('the service is handing the call back', 'AbortError');

/**
 * One channel's visit to a stage: its merge fields, its logger (call id on every line), and what
 * tells of the call's end (the caller hung up, the channel left Stasis, the service interrupted
 * it), so no step keeps working for a caller who is gone.
 */
export class CallSession {
  readonly vars: Record<string, string>;
  readonly log: Logger;
  /** Asterisk's time of the StasisStart (epoch ms), for measuring what the service adds to a call. */
  readonly stasisStartAt: number;
  /**
   * The call's end as a request can be cancelled by it (sendRequest's `signal`), and as observers
   * are told of it. An AbortSignal is an EventTarget whose abort() builds and dispatches an Event:
   * a tenth of a routed call's CPU for a signal that only one request ever listened to.
   */
  readonly ending = new CallEnding();
  /**
   * What the call waited on outside the service, summed by the steps that waited (the routing
   * API; the caller listening or typing), so the stage's time in the service can be split into
   * theirs, Asterisk's (the channel's restMs) and the service's own.
   */
  readonly waited = { apiMs: 0, mediaMs: 0 };
  /** hung up or out of Stasis: nothing more can be done with the channel */
  private gone = false;
  private answered: boolean;

  constructor(
    readonly stage: string,
    readonly callId: string,
    readonly channel: ChannelHandle,
    start: StasisStart,
    baseLog: Logger,
    /** How numbers without + are read (sms.defaultCountry), for `{caller.e164}` and the like. */
    readonly defaultCountry?: CountryCode,
  ) {
    this.vars = callVars(stage, callId, start, defaultCountry);
    this.answered = start.channel.state === 'Up';
    this.stasisStartAt = asteriskTime(start.timestamp) ?? Date.now();
    this.log = baseLog.child({
      callId,
      channel: start.channel.id,
      stage,
      caller: maskNumber(this.vars.caller, baseLog.level),
    });
    const end = () => {
      this.gone = true;
      this.ending.end(CALL_ENDED);
    };
    channel.on('StasisEnd', end);
    channel.on('ChannelHangupRequest', end);
    channel.on('ChannelDestroyed', end);
  }

  /** An AbortSignal of the call's end, for what takes no other kind (playbacks, AbortSignal.any); made when first asked for. */
  get signal(): AbortSignal {
    return this.ending.signal;
  }

  /** Whether the steps may still drive the call: false once it ended or was interrupted. */
  get active(): boolean {
    return !this.ending.aborted;
  }

  /** Whether the channel is still in Stasis (an interrupted call is, until it is handed back). */
  get inStasis(): boolean {
    return !this.gone;
  }

  /**
   * Stops the steps (a prompt playing, a wait for digits, a request) so that the call can be
   * handed back at once: Asterisk carries out a channel's other requests only once its playback
   * has ended, so a hand-back during a long prompt would otherwise wait for the whole prompt.
   */
  interrupt(): void {
    this.ending.end(INTERRUPTED);
  }

  /** Prompts need an answered channel; a queue caller is already up, a new arrival may not be. */
  async ensureAnswered(): Promise<void> {
    if (this.answered) return;
    await this.channel.answer();
    this.answered = true;
  }

  end(): void {
    this.ending.end(CALL_ENDED);
    this.channel.release();
  }
}

/**
 * The end of a call, told once, with its reason, to what listens for it. It has the members of an
 * AbortSignal that a request's cancellation uses (sendRequest takes it as its `signal`), and a
 * real AbortSignal only for whoever asks for one.
 */
export class CallEnding implements Cancellation {
  aborted = false;
  reason: unknown = undefined;
  private listeners: Array<() => void> | undefined;
  private controller: AbortController | undefined;

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    if (!this.aborted) (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const i = this.listeners?.indexOf(listener) ?? -1;
    if (i >= 0) this.listeners!.splice(i, 1);
  }

  /** Once: later calls (a hang-up after the stage ended) change nothing. */
  end(reason: DOMException): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners;
    this.listeners = undefined;
    this.controller?.abort(reason);
    if (!listeners) return;
    for (const l of listeners) {
      try {
        l();
      } catch (e) {
        // as an EventTarget does: the others still run, and the error is not lost
        process.nextTick(() => {
          throw e;
        });
      }
    }
  }
}

/** Stasis args after the stage name: `key=value` become merge fields, the rest arg1, arg2, … */
export function parseStageArgs(args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  args.forEach((arg, i) => {
    // the shipped [call-actions-stasis] Gosub passes every argument slot, the unused ones empty
    if (arg === '') return;
    const eq = arg.indexOf('=');
    if (eq > 0) out[arg.slice(0, eq).trim()] = arg.slice(eq + 1);
    else out[`arg${i + 1}`] = arg;
  });
  return out;
}

/** The merge fields that hold a phone number as dialled; each also comes as `{<name>.e164}` and `{<name>.national}`. */
export const NUMBER_VARS = ['caller', 'TEL', 'called', 'did'] as const;

function callVars(stage: string, callId: string, start: StasisStart, defaultCountry?: CountryCode): Record<string, string> {
  const args = parseStageArgs(start.args.slice(1));
  const caller = start.channel.caller.number ?? '';
  const called = args.did || start.channel.dialplan.exten;
  // seed 000 (BIZTEL) writes {TEL} for the caller's number
  const numbers: Record<(typeof NUMBER_VARS)[number], string | undefined> = { caller, TEL: caller, called, did: args.did };
  const out: Record<string, string> = {};
  // read when first merged; a Stasis() argument of the same name (did.e164=…) wins, like every argument
  defineNumberFields(out, numbers, NUMBER_VARS.filter((n) => numbers[n] !== undefined), defaultCountry);
  Object.assign(out, args);
  out.stage = stage;
  out.callId = callId;
  out.channelId = start.channel.id;
  out.caller = caller;
  out.TEL = caller;
  out.callerName = start.channel.caller.name ?? '';
  out.called = called;
  return out;
}

/** ARI timestamps look like 2026-11-21T03:52:58.123+0000; Date.parse wants a colon in the offset. */
export function asteriskTime(ts: string | undefined): number | undefined {
  if (!ts) return undefined;
  // the colon put in by hand: a regular expression's replace cost more than the parse
  const n = ts.length;
  const sign = ts[n - 5];
  const t = Date.parse((sign === '+' || sign === '-') && OFFSET_DIGITS.test(ts.slice(n - 4)) ? `${ts.slice(0, n - 2)}:${ts.slice(n - 2)}` : ts);
  return Number.isFinite(t) ? t : undefined;
}

const OFFSET_DIGITS = /^\d{4}$/;
