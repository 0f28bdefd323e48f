import type { Logger } from '../log.js';
import type { CountryCode } from 'libphonenumber-js';
import { maskNumber } from '../log.js';
import { defineNumberFields } from '../phone.js';
import type { ChannelHandle } from '../asterisk/ari.js';
import type { StasisStart } from '../asterisk/ari-events.js';

/**
 * The reason every ended call's signal carries. abort() without one builds a new DOMException,
 * stack trace included, for every call; whoever looks at the reason only needs its name.
 */
const CALL_ENDED = new DOMException('the call left the stage', 'AbortError');
const INTERRUPTED = new DOMException('the service is handing the call back', 'AbortError');

/**
 * One channel's visit to a stage: its merge fields, its logger (call id on every line), and a
 * signal that fires when the caller hangs up or the channel leaves Stasis, so no step keeps
 * working for a caller who is gone.
 */
export class CallSession {
  readonly vars: Record<string, string>;
  readonly log: Logger;
  /** Asterisk's time of the StasisStart (epoch ms), for measuring what the service adds to a call. */
  readonly stasisStartAt: number;
  private readonly ended = new AbortController();
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
      this.ended.abort(CALL_ENDED);
    };
    channel.on('StasisEnd', end);
    channel.on('ChannelHangupRequest', end);
    channel.on('ChannelDestroyed', end);
  }

  get signal(): AbortSignal {
    return this.ended.signal;
  }

  /** Whether the steps may still drive the call: false once it ended or was interrupted. */
  get active(): boolean {
    return !this.ended.signal.aborted;
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
    this.ended.abort(INTERRUPTED);
  }

  /** Prompts need an answered channel; a queue caller is already up, a new arrival may not be. */
  async ensureAnswered(): Promise<void> {
    if (this.answered) return;
    await this.channel.answer();
    this.answered = true;
  }

  end(): void {
    this.ended.abort(CALL_ENDED);
    this.channel.release();
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
  const vars: Record<string, string> = {
    ...args,
    stage,
    callId,
    channelId: start.channel.id,
    caller,
    // seed 000 (BIZTEL) writes {TEL} for the caller's number
    TEL: caller,
    callerName: start.channel.caller.name ?? '',
    called: args.did || start.channel.dialplan.exten,
  };
  // read when first merged; a Stasis() argument of the same name (did.e164=…) wins, like every argument
  const out: Record<string, string> = {};
  defineNumberFields(out, vars, NUMBER_VARS.filter((n) => vars[n] !== undefined), defaultCountry);
  return Object.assign(out, vars);
}

/** ARI timestamps look like 2026-11-21T03:52:58.123+0000; Date.parse wants a colon in the offset. */
export function asteriskTime(ts: string | undefined): number | undefined {
  if (!ts) return undefined;
  const t = Date.parse(ts.replace(/([+-]\d{2})(\d{2})$/, '$1:$2'));
  return Number.isFinite(t) ? t : undefined;
}
