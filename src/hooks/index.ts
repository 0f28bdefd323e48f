import type { CountryCode } from 'libphonenumber-js';
import type { Dispatcher } from 'undici';
import { CallEventTracker, type StageEntry } from '../asterisk/call-events.js';
import { defineFeature, requireId } from '../calls/feature.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/port.js';
import { HOOKS_USAGE, hooksCommand, type HooksCliConfig } from './cli.js';
import { checkHookSteps, HOOKS_SECTIONS, type Hook } from './config.js';
import { hook as hookStep } from './step.js';
import { hookHealth, hookLogFilter, queryHookLog, type HookHealth } from './history.js';
import { HookWorker, type InlineContext, type InlineResult } from './worker.js';
import { hooksRetention } from './retention.js';

/**
 * Hooks (BIZTEL's call actions) as the service sees them: call events in, hooks run, a log and a
 * health summary out. `hooksFeature` below registers them with the service.
 */

/** A hook failing this many runs in a row is reported in /health (never silently). */
export const WARN_AFTER_FAILURES = 3;
/** A queued run older than this means the queue is stuck (or the endpoint down for long). */
export const WARN_BACKLOG_AGE_MS = 10 * 60_000;

export interface HooksOptions {
  hooks: readonly Hook[];
  store: Store;
  log: Logger;
  secrets?: readonly string[];
  defaultCountry?: CountryCode;
  /** the service's call-event tracker (app/ feeds it from AMI); a private one when absent */
  tracker?: CallEventTracker;
  dispatcher?: Dispatcher;
}

export interface HooksHealth extends HookHealth {
  warnings: string[];
}

export interface Hooks {
  readonly worker: HookWorker;
  start(): void;
  stop(): Promise<void>;
  /** From the stage runner. */
  stageEntered(entry: StageEntry): void;
  runInline(name: string, ctx: InlineContext): Promise<InlineResult>;
  callVars(callId: string): Promise<Record<string, string>>;
  health(): Promise<HooksHealth>;
  /** GET /hooks/log */
  logRoute(url: URL): Promise<{ status: number; body: unknown }>;
}

export function createHooks(opts: HooksOptions): Hooks {
  const log = opts.log.child({ component: 'hooks' });
  const tracker = opts.tracker ?? new CallEventTracker(opts.log.child({ component: 'events' }));
  const worker = new HookWorker({
    store: opts.store,
    hooks: opts.hooks,
    secrets: opts.secrets,
    defaultCountry: opts.defaultCountry,
    dispatcher: opts.dispatcher,
    logger: log,
  });
  tracker.on('event', (ev) => {
    worker.enqueue(ev).catch((e: unknown) => {
      // The store refused the write (disk full, locked past busy_timeout): say so loudly.
      log.error({ err: e, callId: ev.callId, event: ev.kind }, 'hooks for this event could not be queued');
    });
  });

  return {
    worker,
    start: () => worker.start(),
    stop: () => worker.stop({ graceMs: 2000 }),
    stageEntered: (entry) => tracker.stageEntered(entry),
    runInline: (name, ctx) => worker.runInline(name, ctx),
    callVars: (callId) => worker.callVars(callId),
    async health() {
      const h = await hookHealth(opts.store);
      const warnings: string[] = [];
      for (const f of h.failing) {
        if (f.consecutiveFailures >= WARN_AFTER_FAILURES) {
          warnings.push(`hook "${f.hook}" failed ${f.consecutiveFailures} times in a row (last: ${f.lastReason ?? 'unknown'}, ${new Date(f.lastFailedAt).toISOString()})`);
        }
      }
      if (h.oldestPendingAt !== null && Date.now() - h.oldestPendingAt > WARN_BACKLOG_AGE_MS) {
        warnings.push(`${h.backlog} hook run(s) waiting, the oldest since ${new Date(h.oldestPendingAt).toISOString()}`);
      }
      return { ...h, warnings };
    },
    async logRoute(url) {
      try {
        return { status: 200, body: await queryHookLog(opts.store, hookLogFilter(url.searchParams)) };
      } catch (e) {
        if (e instanceof RangeError) return { status: 400, body: { error: e.message } };
        throw e;
      }
    },
  };
}

export const hooksFeature = defineFeature<HooksCliConfig>()({
  name: 'hooks',
  sections: HOOKS_SECTIONS,
  steps: [hookStep],
  check: (c, ctx) => checkHookSteps(c.stages, c.hooks, ctx),
  followsCalls: (c) => c.hooks.length > 0,
  commands: [{ name: 'hooks', usage: HOOKS_USAGE, run: hooksCommand }],
  create({ config, store, log, secrets, defaultCountry, tracker, metrics }) {
    const hooks = createHooks({ hooks: config.hooks, store, log, secrets, defaultCountry, tracker });
    hooks.worker.on('attempt', (a) => metrics.hookAttempts.inc({ hook: a.hook, outcome: a.outcome }));
    return {
      services: { hooks },
      // only hooks that extract can have left variables for a call
      ...(config.hooks.some((h) => h.extract.length > 0) ? { mergeFields: (callId: string) => hooks.callVars(callId) } : {}),
      routes: { '/hooks/log': (url) => hooks.logRoute(url) },
      actions: {
        '/hooks/resend': async ({ body, actor }) => {
          const id = requireId(body);
          return (await hooks.worker.resend(id, `re-sent by ${actor}`))
            ? { status: 202, body: { id, status: 'pending' } }
            : { status: 409, body: { error: `no failed queued hook run with id ${id}` } };
        },
      },
      retention: [hooksRetention],
      health: () => hooks.health(),
      start: () => hooks.start(),
      wake: () => hooks.worker.wake(),
      stop: () => hooks.stop(),
    };
  },
});
