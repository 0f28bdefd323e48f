import { performance } from 'node:perf_hooks';
import type { Logger } from '../log.js';
import type { CallMetrics } from './metrics.js';
import type { AriPort, ChannelHandle } from '../asterisk/ari.js';
import type { StasisStart } from '../asterisk/ari-events.js';
import type { CountryCode } from 'libphonenumber-js';
import { stepConditionHolds } from './condition.js';
import { transportFailure } from '../http/failure.js';
import type { Step } from './step.js';
import type { StepServices } from './services.js';
import { CallSession, parseStageArgs } from './session.js';

/** What a call runs with, made from one version of the config; a reload makes the next one. */
export interface StageSet {
  stages: ReadonlyMap<string, readonly Step[]>;
  services: StepServices;
}

export interface RunnerOptions extends StageSet {
  ari: AriPort;
  log: Logger;
  /** Ask Asterisk for the linkedid when the dialplan does not pass `callid=` (one ARI request per call). */
  lookupLinkedId?: boolean;
  /** Variables earlier hooks extracted for this call, merged into the stage's merge fields (CA4). */
  callVars?: (callId: string) => Promise<Record<string, string>>;
  /** Told of every stage a call enters (the `stage.entered` call event). */
  onStageEntered?: (session: CallSession, ev: StasisStart) => void;
  /** Told of every step its `when:` skipped (the `step.skipped` call event). */
  onStepSkipped?: (session: CallSession, skipped: SkippedStep) => void;
  /** Per stage: visits, how they ended, and how long the channel stayed (GET /stats, the bench's histograms). */
  metrics?: CallMetrics;
  /** Told of each stage and step as the call goes through it (Prometheus counters, the console's live calls). */
  observers?: readonly RunObserver[];
  /** How numbers without + are read by `when: { did, caller }` (sms.defaultCountry). */
  defaultCountry?: CountryCode;
}

/** A step its condition kept from running, as the log and the call events tell it. */
export interface SkippedStep {
  /** where it stands in the config, e.g. stages.queue-exit[0].sms */
  step: string;
  kind: string;
  reason: string;
}

/** What happens to a call in a stage, as it happens. Each member is optional and must not throw. */
export interface RunObserver {
  stageEntered?(session: CallSession): void;
  stepStarted?(session: CallSession, step: Step): void;
  /** `error`: the step threw */
  stepDone?(session: CallSession, step: Step, result: 'next' | 'handed-off' | 'fallback' | 'error'): void;
  stageEnded?(session: CallSession, outcome: 'left' | 'fallback' | 'gone'): void;
}

/** Set on the channel when a stage failed, so the dialplan after Stasis() can take its fallback. */
export const RESULT_VAR = 'CALL_ACTIONS_RESULT';
/** Set (with RESULT_VAR=error) on a call the service did not take because it is stopping: the dialplan may try the peer instance. */
export const REFUSED_VAR = 'CALL_ACTIONS_REFUSED';

/**
 * `Stasis(call-actions,<stage>[,args])` runs that stage's steps in order. Whatever happens, the
 * caller ends up somewhere: a step that hands the call off ends the stage; a stage that runs out
 * of steps, names no configured stage, or fails, hands the call back to the dialplan.
 */
export class StageRunner {
  private readonly sessions = new Set<CallSession>();
  private readonly handBacks = new WeakMap<CallSession, Promise<void>>();
  /** Set by drain(): new calls are refused, so the dialplan sends them to the peer or its fallback. */
  private draining = false;
  private readonly idle = new Set<() => void>();

  private current: StageSet;

  constructor(private readonly opts: RunnerOptions) {
    this.current = { stages: opts.stages, services: opts.services };
  }

  /**
   * A reloaded config: calls that arrive from now on run its stages and services; a call already
   * in a stage finishes it with the set it started with.
   */
  replaceStages(next: StageSet): void {
    this.current = next;
  }

  start(): void {
    this.opts.ari.onStasisStart((ev) => void this.handle(ev));
  }

  get activeCalls(): number {
    return this.sessions.size;
  }

  /**
   * The first half of a graceful stop: from now on every new call is handed straight back to the
   * dialplan as refused (CALL_ACTIONS_RESULT=error, CALL_ACTIONS_REFUSED=draining), so the shipped
   * dialplan tries the peer instance or runs its fallback at once; the calls already here go on
   * with their stage. Resolves when none is left, when `drainMs` is over, or when `cut` fires
   * (a second signal, or ARI gone: nothing can be played then, so waiting would only be silence);
   * whatever is left is then released by releaseAll().
   */
  async drain(drainMs: number, cut?: AbortSignal): Promise<{ left: number; waitedMs: number }> {
    this.draining = true;
    const t0 = performance.now();
    if (this.sessions.size && drainMs > 0 && !cut?.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          cut?.removeEventListener('abort', done);
          this.idle.delete(done);
          resolve();
        };
        const timer = setTimeout(done, drainMs);
        cut?.addEventListener('abort', done, { once: true });
        this.idle.add(done);
      });
    }
    return { left: this.sessions.size, waitedMs: Math.round(performance.now() - t0) };
  }

  /**
   * On shutdown: give every caller still here back to the dialplan rather than leave them in
   * silence, as a stage that did not finish (CALL_ACTIONS_RESULT=error), so that the dialplan's
   * fallback runs: the shipped queue-exit context puts the caller back into the queue, where a
   * plain return would reach its Hangup().
   */
  async releaseAll(): Promise<void> {
    await Promise.allSettled(
      [...this.sessions].map((s) => {
        s.interrupt();
        return this.fail(s);
      }),
    );
  }

  private async handle(ev: StasisStart): Promise<void> {
    const receivedAt = performance.now();
    const { ari, log, metrics } = this.opts;
    const observe = (f: (o: RunObserver) => void) => {
      for (const o of this.opts.observers ?? []) {
        try {
          f(o);
        } catch (e) {
          log.error({ err: e }, 'a run observer threw');
        }
      }
    };
    const { stages, services } = this.current;
    const stage = ev.args[0] ?? '';
    if (this.draining) return this.refuse(ev, stage);
    metrics?.entered(stage);
    // Whichever step moves the channel on, the moment it left is when that REST call returned;
    // watching the handle here keeps the steps (and whatever destinations they reach) unaware.
    let left: { wall: number; perf: number } | undefined;
    const raw = ari.channel(ev.channel.id);
    const leaving =
      <A extends unknown[]>(fn: (...a: A) => Promise<void>) =>
      async (...a: A): Promise<void> => {
        await fn(...a);
        left ??= { wall: Date.now(), perf: performance.now() };
      };
    const channel: ChannelHandle = {
      ...raw,
      continueInDialplan: leaving(raw.continueInDialplan),
      hangup: leaving(raw.hangup),
      // the spread copied the sum as it was; this reads it as it grows
      get restMs() {
        return raw.restMs;
      },
    };
    const callId = await this.callIdOf(ev, channel.getVar);
    const session = new CallSession(stage, callId, channel, ev, log, this.opts.defaultCountry);
    this.sessions.add(session);
    try {
      // The stage's own fields win: a hook may not redefine the caller or a Stasis() argument.
      for (const [k, v] of Object.entries((await this.opts.callVars?.(callId)) ?? {})) if (!(k in session.vars)) session.vars[k] = v;
      this.opts.onStageEntered?.(session, ev);
    } catch (e) {
      session.log.error({ err: e }, 'call variables or stage event unavailable');
    }
    const steps = stages.get(stage);
    let errored = false;
    try {
      if (!steps) {
        session.log.error({ known: [...stages.keys()] }, `no stage "${stage}" in the config: handing the call back to the dialplan`);
        errored = true;
        await this.fail(session);
        return;
      }
      session.log.info({ args: ev.args.slice(1).length }, 'stage entered');
      observe((o) => o.stageEntered?.(session));
      for (const step of steps) {
        if (!session.active) return;
        if (step.when) {
          const cond = stepConditionHolds(step.when, session.vars, this.opts.defaultCountry);
          if (!cond.ok) {
            this.skipped(session, { step: step.where, kind: step.kind, reason: cond.reason });
            continue;
          }
        }
        observe((o) => o.stepStarted?.(session, step));
        let result: Awaited<ReturnType<Step['run']>>;
        try {
          result = await step.run(session, services);
        } catch (e) {
          observe((o) => o.stepDone?.(session, step, 'error'));
          throw e;
        }
        observe((o) => o.stepDone?.(session, step, result));
        if (result === 'handed-off') return;
        if (result === 'fallback') {
          errored = true;
          await this.fail(session);
          return;
        }
      }
      if (session.active) await channel.continueInDialplan();
    } catch (e) {
      session.log.error({ err: e }, 'stage failed: handing the call back to the dialplan');
      errored = true;
      await this.fail(session);
    } finally {
      this.sessions.delete(session);
      if (!this.sessions.size) for (const done of [...this.idle]) done();
      session.end();
      const outcome = !left ? 'gone' : errored ? 'fallback' : 'left';
      if (steps) observe((o) => o.stageEnded?.(session, outcome));
      metrics?.ended(
        stage,
        outcome,
        left && { sinceStasisStartMs: left.wall - session.stasisStartAt, inServiceMs: left.perf - receivedAt, asteriskMs: channel.restMs, ...session.waited },
      );
    }
  }

  private skipped(session: CallSession, skipped: SkippedStep): void {
    session.log.info(skipped, 'step skipped: its condition does not hold');
    try {
      this.opts.onStepSkipped?.(session, skipped);
    } catch (e) {
      session.log.error({ err: e }, 'step.skipped call event unavailable');
    }
  }

  /** A call that arrived while draining: straight back, untouched, so the dialplan can try elsewhere. */
  private async refuse(ev: StasisStart, stage: string): Promise<void> {
    const channel = this.opts.ari.channel(ev.channel.id);
    const log = this.opts.log.child({ channel: ev.channel.id, stage });
    try {
      await channel.setVars({ [REFUSED_VAR]: 'draining', [RESULT_VAR]: 'error' });
      await channel.continueInDialplan();
      log.info('stopping: call refused, handed back to the dialplan');
    } catch (e) {
      // the caller hung up meanwhile, or ARI is gone (then Asterisk ends the Stasis() itself)
      log.warn({ err: e }, 'stopping: could not hand a new call back to the dialplan');
    }
  }

  /** Hands the call back as a failed stage; once per call, whoever asks (a step, a shutdown). */
  private fail(session: CallSession): Promise<void> {
    let handBack = this.handBacks.get(session);
    if (!handBack) this.handBacks.set(session, (handBack = this.handBack(session)));
    return handBack;
  }

  private async handBack(session: CallSession): Promise<void> {
    for (let attempt = 1; session.inStasis; attempt++) {
      try {
        await session.channel.setVar(RESULT_VAR, 'error');
        await session.channel.continueInDialplan();
        return;
      } catch (e) {
        if (!session.inStasis) return;
        const failure = transportFailure(e);
        // Asterisk carries out a channel's requests only once its prompt is fetched and played (or
        // stopped), and still carries them out after our timeout: hanging up would cut a caller off.
        // A connection lost mid-request (REST rides the event WebSocket, which can drop) is tried
        // again too, over whichever transport is up: a continue that did arrive makes the channel
        // leave Stasis, and a second one then finds it gone.
        if (attempt < 3 && (failure === 'timeout' || failure === 'connection-lost')) {
          session.log.warn({ err: e, attempt }, failure === 'timeout' ? 'Asterisk is slow to take the call back; trying again' : 'the connection to Asterisk was lost handing the call back; trying again');
          continue;
        }
        session.log.error({ err: e }, 'could not hand the call back to the dialplan; hanging up');
        await session.channel.hangup().catch(() => undefined);
        return;
      }
    }
  }

  private async callIdOf(ev: StasisStart, getVar: (n: string) => Promise<string | undefined>): Promise<string> {
    const given = parseStageArgs(ev.args.slice(1)).callid;
    if (given) return given;
    if (this.opts.lookupLinkedId === false) return ev.channel.id;
    try {
      return (await getVar('CHANNEL(linkedid)')) || ev.channel.id;
    } catch {
      return ev.channel.id;
    }
  }
}
