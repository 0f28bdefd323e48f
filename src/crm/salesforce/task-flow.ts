import type { CountryCode } from 'libphonenumber-js';
import type { Logger } from '../../log.js';
import { maskNumber } from '../../log.js';
import { normaliseNumber } from '../../phone.js';
import type { CallMeter, SalesforceClient } from './client.js';
import type { SalesforceConfig } from './config.js';
import { SalesforceError } from './errors.js';
import { clickToCall, isInternal, MatchCache, phoneVariants, pick, soslFor, type Match, type MatchRule } from './match.js';
import type { ActivityRow } from './store.js';
import { OWNER_REFUSALS, OwnerResolver } from './owner.js';
import { agentOf, taskFields, type CallSnapshot, type Phase, type WriteContext } from './task.js';

/**
 * One attempt at a call's Task: look its record up unless an earlier attempt did, then create the
 * Task or update the one made at the start. The queue around it (claim, lease, retries, what the
 * row says afterwards) is the worker's (src/crm/salesforce/worker.ts); this is only what is asked
 * of Salesforce, and in which order.
 *
 * Each result Salesforce gives that a later attempt must not ask for again (the match, the Task
 * id, that a create went out) is written to the row through `Progress` before the next request,
 * so a crash or a lost answer costs at most a repeat of the one request under way, never a second
 * Task.
 */

export type Outcome = { kind: 'ok'; synced: Phase; reason: string } | { kind: 'error'; error: SalesforceError } | { kind: 'lost' };

/**
 * The attempt's guarded writes to its row. Each is false once the row is no longer this attempt's
 * (its lease ran out and another worker took it), and the attempt stops there.
 */
export interface Progress {
  matched(match: Match): Promise<boolean>;
  /** A create is about to go out: until its answer is saved, it may or may not have happened. */
  creating(): Promise<boolean>;
  /** The Task's id, created now or found after a create whose answer was lost. */
  task(taskId: string): Promise<boolean>;
}

export interface AttemptResult {
  outcome: Outcome;
  taskId?: string;
  /** A create went out and what became of it is unknown. */
  createUnknown: boolean;
}

export interface TaskFlowOptions {
  client: SalesforceClient;
  config: SalesforceConfig;
  defaultCountry?: CountryCode;
  logger?: Logger;
  logLevel?: string;
  now: () => number;
}

export class TaskFlow {
  private readonly cache: MatchCache;
  private readonly log?: Logger;
  private readonly owners?: OwnerResolver;

  constructor(private readonly opts: TaskFlowOptions) {
    this.cache = new MatchCache(opts.config.lookupCache);
    this.log = opts.logger;
    if (opts.config.owners) this.owners = new OwnerResolver(opts.config.owners, opts.client, opts.now, opts.logger);
  }

  private get cfg(): SalesforceConfig {
    return this.opts.config;
  }

  async attempt(row: ActivityRow, call: CallSnapshot, progress: Progress, meter: CallMeter, signal: AbortSignal): Promise<AttemptResult> {
    let taskId = row.task_id ?? undefined;
    let createUnknown = row.create_unknown === 1;
    const lost = (): AttemptResult => ({ outcome: { kind: 'lost' }, taskId, createUnknown });
    try {
      let match: Match | undefined = row.match_rule ? { rule: row.match_rule as MatchRule, ...(row.record_id ? { recordId: row.record_id } : {}), ...(row.record_type ? { recordType: row.record_type } : {}) } : undefined;
      if (!match) {
        match = await this.resolve(call, meter, signal);
        if (!(await progress.matched(match))) return lost();
      }
      if (match.rule === 'internal' && !taskId) {
        // Between our own phones: no customer, no activity.
        return { outcome: { kind: 'ok', synced: row.phase, reason: 'internal call: no Task' }, createUnknown: false };
      }
      if (!taskId && createUnknown) {
        // The last create's answer was lost: it may have gone through.
        taskId = await this.opts.client.findTask(call.callId, meter, signal);
        if (taskId) {
          this.log?.info({ callId: call.callId, taskId }, 'salesforce: the Task of a create whose answer was lost exists; updating it');
          if (!(await progress.task(taskId))) return lost();
          // What it holds is unknown: write the current phase over it.
          row = { ...row, synced: null };
        }
        createUnknown = false;
      }
      const m = match;
      if (!taskId) {
        const ctx = await this.context(call, meter, signal);
        if (!(await progress.creating())) return lost();
        createUnknown = true;
        taskId = await this.withOwner(ctx, (c) => this.opts.client.createTask(taskFields('create', row.phase, call, m, this.cfg, c), meter, signal));
        createUnknown = false;
        if (!(await progress.task(taskId))) return lost();
        this.log?.info({ callId: call.callId, taskId, phase: row.phase, rule: match.rule }, 'salesforce Task created');
      } else if (row.synced !== row.phase) {
        const ctx = await this.context(call, meter, signal);
        const id = taskId;
        await this.withOwner(ctx, (c) => this.opts.client.updateTask(id, taskFields('update', row.phase, call, m, this.cfg, c), meter, signal));
        this.log?.info({ callId: call.callId, taskId, phase: row.phase }, 'salesforce Task updated');
      }
      return { outcome: { kind: 'ok', synced: row.phase, reason: `${row.phase === 'end' ? 'logged' : 'created at the start'}: ${taskId}` }, taskId, createUnknown };
    } catch (e) {
      if (!(e instanceof SalesforceError)) {
        this.log?.error({ err: e, callId: row.call_id }, 'salesforce attempt threw');
        return { outcome: { kind: 'error', error: new SalesforceError('unexpected', `unexpected: ${(e as Error).message}`, { mayHaveApplied: createUnknown }) }, taskId, createUnknown };
      }
      // A create that was refused outright did not happen; anything else may have.
      if (createUnknown && !e.detail.mayHaveApplied) createUnknown = false;
      return { outcome: { kind: 'error', error: e }, taskId, createUnknown };
    }
  }

  /** How the write reads numbers, and whom the Task goes to (logged with the reason). */
  private async context(call: CallSnapshot, meter: CallMeter, signal: AbortSignal): Promise<WriteContext> {
    const ctx: WriteContext = { defaultCountry: this.opts.defaultCountry };
    if (!this.owners) return ctx;
    const agent = agentOf(call);
    const choice = await this.owners.resolve(agent, call.vars.agentName ?? '', meter, signal);
    const line = { callId: call.callId, agent, owner: choice.ownerId ?? 'integration user', reason: choice.reason };
    if (choice.fallback && agent) this.log?.warn(line, 'salesforce Task owner: the agent maps to no User; the integration user owns the Task');
    else this.log?.info(line, 'salesforce Task owner');
    if (choice.ownerId) ctx.ownerId = choice.ownerId;
    return ctx;
  }

  /** A write, sent once more without OwnerId when Salesforce refuses the owner (an inactive or deleted User). */
  private async withOwner<T>(ctx: WriteContext, send: (ctx: WriteContext) => Promise<T>): Promise<T> {
    try {
      return await send(ctx);
    } catch (e) {
      if (!ctx.ownerId || !(e instanceof SalesforceError) || e.outcome !== 'final' || !OWNER_REFUSALS.has(e.detail.errorCode ?? '')) throw e;
      this.owners?.refusedOwner(ctx.ownerId);
      return send({ ...ctx, ownerId: undefined });
    }
  }

  private async resolve(call: CallSnapshot, meter: CallMeter, signal: AbortSignal): Promise<Match> {
    const given = clickToCall(call.vars[this.cfg.recordIdVariable]);
    const level = this.opts.logLevel ?? 'info';
    const report = (m: Match, extra: Record<string, unknown> = {}) => {
      this.log?.info({ callId: call.callId, rule: m.rule, recordType: m.recordType, recordId: m.recordId, number: maskNumber(call.number, level), cached: m.cached ?? false, ...extra }, 'salesforce record matched');
      return m;
    };
    if (given) return report(given, { variable: this.cfg.recordIdVariable });
    if (isInternal(call.number)) return report({ rule: 'internal' });
    const variants = phoneVariants(call.number, this.opts.defaultCountry);
    if (!variants.length) return report({ rule: 'no-number' });
    const key = normaliseNumber(call.number, this.opts.defaultCountry);
    const hit = this.cache.get(key, this.opts.now());
    if (hit) return report(hit);
    const found = pick(await this.opts.client.search(soslFor(variants), meter, signal));
    this.cache.set(key, found, this.opts.now());
    return report(found, { variants: variants.length });
  }
}
