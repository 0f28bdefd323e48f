import { performance } from 'node:perf_hooks';
import type { CallSession } from '../calls/session.js';
import type { AttemptResult } from '../http/failure.js';
import type { BuiltRequest } from '../http/request.js';
import { sendAndClassify } from '../http/send.js';
import { scrubText } from '../http/redact.js';
import type { StepServices } from '../calls/services.js';
import type { RoutingServices } from './services.js';
import type { StepResult } from '../calls/step.js';
import type { Destination } from './settings.js';
import { decide, type Decision, type Outcome } from './decide.js';
import { dataIsPrompt, describeDestination, destinationPlace, loops, reachDestination } from './destinations/index.js';
import { DEFAULT_GATHER, gather, promptMedia, textMedia } from './prompts.js';
import type { NewRouteLogEntry } from './history.js';
import { callFacts, routeRequest } from './api-request.js';
import type { Run, Scope } from './run.js';
import { isOpen } from './schedule.js';

/**
 * One route step's work for one call: ask the customer's API, speak its answer, and take the
 * caller where it says — through menus, announcements and further integrations — until the call
 * has left for a destination or the stage goes on. Every way this can go wrong ends in the route's
 * fallback (R7); a loop guard bounds menu and integration cycles.
 */

export class RouteRun implements Run {
  /** menus and integrations passed through so far (the loop guard counts these) */
  hops = 0;
  private readonly pending: NewRouteLogEntry[] = [];
  /** The spoken data of an answer that leads to an interactive menu: the next gather's prompt, so keys may interrupt it. */
  private nextPrompt: string | undefined;

  constructor(
    readonly call: CallSession,
    readonly services: StepServices,
    readonly rs: RoutingServices,
  ) {}

  get schedules() {
    return this.rs.routing.schedules;
  }

  language(scope: Scope): string {
    return scope.route.language ?? this.rs.defaultLanguage;
  }

  describe(dest: Destination): string {
    return describeDestination(dest);
  }

  placeOf(dest: Destination) {
    return destinationPlace(dest, this.rs);
  }

  /** Asks the API (after the schedule check and any digits), speaks the answer, routes. */
  async integration(scope: Scope, opts: { gatherFirst?: boolean } = {}): Promise<StepResult> {
    const { call, rs } = this;
    const cfg = scope.route;
    if (cfg.schedule) {
      const s = rs.routing.schedules[cfg.schedule];
      if (s && !isOpen(s)) {
        const entry = this.note(scope, { outcome: 'outside-schedule', reason: `outside schedule ${cfg.schedule}` }, undefined, undefined);
        return this.fallback(scope, 'outside-schedule', entry);
      }
    }
    const g = cfg.gather ?? (opts.gatherFirst ? DEFAULT_GATHER : undefined);
    if (g) {
      this.flush();
      const t0 = performance.now();
      const prompt = this.nextPrompt;
      this.nextPrompt = undefined;
      const got = await gather(call, this.services, g, { language: this.language(scope), voice: cfg.voice }, prompt);
      call.waited.mediaMs += performance.now() - t0;
      if (!call.active) return 'handed-off';
      call.vars[g.var] = got.digits;
      if (g.var !== 'digits') call.vars.digits = got.digits;
    }

    let built: BuiltRequest;
    try {
      built = routeRequest(cfg, callFacts(call.vars, call.callId, cfg.numbers, call.defaultCountry), call.vars);
    } catch (e) {
      const d: Decision = { outcome: 'transport', reason: `the request could not be built: ${(e as Error).message}` };
      return this.fallback(scope, d.outcome, this.note(scope, d, undefined, undefined));
    }
    if (built.missing.length) call.log.warn({ step: scope.where, missing: built.missing }, 'merge fields without a value');

    const filler = cfg.filler ? this.startFiller(scope) : undefined;
    const asked = performance.now();
    const result = await sendAndClassify({ ...built, timeoutMs: cfg.timeout, signal: call.ending, dispatcher: rs.dispatcher });
    // the result's latency is in whole milliseconds (for the log), and a local API answers in less
    call.waited.apiMs += performance.now() - asked;
    const { latencyMs } = result;
    const filled = (await filler?.stop()) ?? false;
    if (!call.active) {
      this.note(scope, { outcome: 'transport', reason: 'the caller hung up while the API was asked' }, built, result, latencyMs, filled);
      this.flush();
      return 'handed-off';
    }

    const decision = decide(result, { route: cfg, routing: rs.routing, destinations: rs.destinations });
    const logged = this.note(scope, decision, built, result, latencyMs, filled);
    const answered = { step: scope.where, outcome: decision.outcome, reason: decision.reason, latencyMs, status: result.kind === 'response' ? result.status : undefined, filler: filled };
    if (decision.outcome !== 'routed' || !decision.destination) {
      call.log.warn(answered, 'routing API failed: taking the fallback');
      return this.fallback(scope, decision.outcome, logged);
    }
    // a routed call's info line is "routed", which carries the API's time too
    call.log.debug(answered, 'routing API answered');
    logged.decision = describeDestination(decision.destination);

    const answer = decision.answer!;
    const tasks: Array<Promise<unknown>> = [];
    if (answer.callerName) tasks.push(this.setCallerName(answer.callerName));
    if (cfg.speak && answer.data && answer.data.trim() !== '') {
      if (dataIsPrompt(decision.destination)) tasks.push(this.dataMedia(answer.data, scope).then((m) => (this.nextPrompt = m)));
      else tasks.push(this.speakData(answer.data, scope));
    }
    if (tasks.length) {
      this.flush();
      await Promise.all(tasks);
      if (!call.active) return 'handed-off';
    }
    return this.go(decision.destination, scope);
  }

  /** Takes the caller to a destination; the loop guard stops cycles through menus and integrations. */
  async go(dest: Destination, scope: Scope): Promise<StepResult> {
    if (!this.call.active) return 'handed-off';
    if (loops(dest)) {
      this.hops += 1;
      if (this.hops > this.rs.routing.maxHops) {
        this.call.log.warn({ step: scope.where, hops: this.hops, destination: describeDestination(dest) }, 'loop guard: too many menus and integrations in one call');
        const entry = this.note(scope, { outcome: 'loop-guard', reason: `more than ${this.rs.routing.maxHops} menus/integrations` }, undefined, undefined);
        return this.fallback(scope, 'loop-guard', entry);
      }
    }
    return reachDestination(dest, this, scope, this.rs);
  }

  /**
   * The route's fallback. After the loop guard tripped, a fallback that could loop again is not
   * taken: the call goes back to the dialplan's own fallback instead.
   */
  async fallback(scope: Scope, why: Outcome, entry?: NewRouteLogEntry): Promise<StepResult> {
    const f = scope.route.fallback;
    if (!f || (why === 'loop-guard' && loops(f))) {
      if (entry) entry.decision = 'fallback → dialplan (CALL_ACTIONS_RESULT=error)';
      return this.toDialplanFallback(scope, why);
    }
    if (entry) entry.decision = `fallback → ${describeDestination(f)}`;
    if (loops(f) && why !== 'loop-guard') {
      // counted like any other hop, so a menu that falls back to itself still ends
      this.hops += 1;
      if (this.hops > this.rs.routing.maxHops) return this.toDialplanFallback(scope, 'loop-guard');
    }
    return reachDestination(f, this, scope, this.rs);
  }

  /** The stage runner hands the call back with CALL_ACTIONS_RESULT=error, so the dialplan takes its own fallback. */
  toDialplanFallback(scope: Scope, why: Outcome): StepResult {
    this.flush();
    if (!this.call.active) return 'handed-off';
    this.left(scope, 'dialplan fallback', why);
    return 'fallback';
  }

  /** Logged when the call has left for its destination: what the service itself added. */
  left(scope: Scope, destination: string, why?: string): void {
    const { apiMs, mediaMs } = this.call.waited;
    const asteriskMs = this.call.channel.restMs;
    const sinceStasisStartMs = Date.now() - this.call.stasisStartAt;
    const overheadMs = Math.max(0, Math.round(sinceStasisStartMs - apiMs - mediaMs - asteriskMs));
    this.call.log.info(
      { step: scope.where, destination, why, sinceStasisStartMs, apiMs: Math.round(apiMs), mediaMs: Math.round(mediaMs), asteriskMs: Math.round(asteriskMs), overheadMs },
      'routed',
    );
    this.flush();
  }

  async play(media: string, what: string): Promise<string> {
    const { call } = this;
    this.flush();
    await call.ensureAnswered();
    const t0 = performance.now();
    const outcome = await call.channel.play(media, call.signal);
    const waited = performance.now() - t0;
    call.waited.mediaMs += waited;
    const ms = Math.round(waited);
    call.log.info({ what, outcome, ms, media }, 'prompt played');
    return outcome;
  }

  private async dataMedia(data: string, scope: Scope): Promise<string | undefined> {
    const language = this.language(scope);
    try {
      return await textMedia(data, this.services, language, scope.route.voice);
    } catch (e) {
      // A text TTS cannot say (too long, unknown language) must not keep the caller from the destination.
      this.call.log.warn({ step: scope.where, err: (e as Error).message, language }, 'the answer\'s data could not be synthesised; routing without it');
      return undefined;
    }
  }

  private async speakData(data: string, scope: Scope): Promise<void> {
    const media = await this.dataMedia(data, scope);
    if (!media) return;
    const outcome = await this.play(media, 'data');
    if (outcome === 'failed') this.call.log.warn({ step: scope.where, media }, 'Asterisk could not play the answer\'s data');
  }

  private async setCallerName(name: string): Promise<void> {
    // A display name travels in SIP From headers: no control characters, quotes or backslashes.
    const clean = name.replace(/[\u0000-\u001f\u007f"\\]+/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 64);
    if (clean === '') return;
    try {
      await this.call.channel.setVar('CALLERID(name)', clean);
      this.call.vars.callerName = clean;
    } catch (e) {
      this.call.log.warn({ err: (e as Error).message }, 'could not set the caller-ID name');
    }
  }

  private startFiller(scope: Scope): { stop(): Promise<boolean> } {
    const f = scope.route.filler!;
    const { call } = this;
    const stop = new AbortController();
    let loop: Promise<void> | undefined;
    let played = false;
    const timer = setTimeout(() => {
      loop = (async () => {
        const media = await promptMedia(f.prompt, call, this.services, { language: this.language(scope), voice: scope.route.voice });
        if (stop.signal.aborted) return;
        await call.ensureAnswered();
        while (!stop.signal.aborted && call.active) {
          played = true;
          const outcome = await call.channel.play(media, AbortSignal.any([stop.signal, call.signal]));
          call.log.info({ step: scope.where, outcome }, 'filler played');
          if (outcome !== 'done') break;
        }
      })().catch((e: unknown) => call.log.warn({ err: (e as Error).message }, 'filler prompt failed'));
    }, f.after);
    return {
      async stop() {
        clearTimeout(timer);
        stop.abort();
        await loop;
        return played;
      },
    };
  }

  /** Keeps the log entry for this decision; written once the caller is on their way. */
  private note(scope: Scope, d: Pick<Decision, 'outcome' | 'reason'>, built: BuiltRequest | undefined, result: AttemptResult | undefined, latencyMs?: number, filler = false): NewRouteLogEntry {
    // the log keeps the URL and the body, not the headers: only those two are scrubbed
    const secrets = this.rs.secrets;
    const entry: NewRouteLogEntry = {
      time: Date.now() - (latencyMs ?? 0),
      callId: this.call.callId,
      channelId: this.call.channel.id,
      stage: this.call.stage,
      step: scope.where,
      integration: scope.integration ?? null,
      caller: this.call.vars.caller ?? null,
      method: built?.method ?? null,
      url: built ? scrubText(built.url, secrets) : null,
      encoding: built ? scope.route.encoding : null,
      requestBody: built?.body !== undefined ? scrubText(built.body, secrets) : null,
      httpStatus: result?.kind === 'response' ? result.status : null,
      responseBody: result?.kind === 'response' ? result.body : result?.kind === 'transport' ? `(${result.error.kind}) ${result.error.message}` : null,
      latencyMs: latencyMs ?? null,
      outcome: d.outcome,
      reason: d.reason,
      decision: 'fallback',
      filler,
      digits: built ? (this.call.vars.digits ?? null) || null : null,
    };
    this.pending.push(entry);
    return entry;
  }

  /** Writes the kept entries; never on the way between the answer and the caller's hand-off. */
  flush(): void {
    while (this.pending.length) {
      const e = this.pending.shift()!;
      const failed = (err: unknown) => this.call.log.error({ err }, 'the routing log could not be written');
      try {
        const written = this.rs.log.record(e);
        if (typeof written !== 'string') written.catch(failed);
      } catch (err) {
        failed(err);
      }
    }
  }
}
