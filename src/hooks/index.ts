import type { CountryCode } from 'libphonenumber-js';
import type { Dispatcher } from 'undici';
import { CallEventTracker, type AmiSource, type StageEntry } from '../asterisk/call-events.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/sqlite.js';
import type { Hook } from './config.js';
import { hookHealth, hookLogFilter, queryHookLog, type HookHealth } from './history.js';
import { HookWorker, type InlineContext, type InlineResult } from './worker.js';

/**
 * Call actions as the service sees them: call events in, hooks run, a log and a health summary
 * out. service.ts wires this to the AMI port, the stage runner, the steps and the HTTP routes.
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
  ami?: AmiSource;
  dispatcher?: Dispatcher;
}

export interface HooksHealth extends HookHealth {
  warnings: string[];
}

export interface CallActions {
  readonly tracker: CallEventTracker;
  readonly worker: HookWorker;
  start(): void;
  stop(): Promise<void>;
  /** From the stage runner. */
  stageEntered(entry: StageEntry): void;
  runInline(name: string, ctx: InlineContext): Promise<InlineResult>;
  callVars(callId: string): Record<string, string>;
  health(): HooksHealth;
  /** GET /hooks/log */
  logRoute(url: URL): { status: number; body: unknown };
}

export function createCallActions(opts: HooksOptions): CallActions {
  const log = opts.log.child({ component: 'hooks' });
  const tracker = new CallEventTracker(opts.log.child({ component: 'events' }));
  const worker = new HookWorker({
    store: opts.store,
    hooks: opts.hooks,
    secrets: opts.secrets,
    defaultCountry: opts.defaultCountry,
    dispatcher: opts.dispatcher,
    logger: log,
  });
  tracker.on('event', (ev) => {
    try {
      worker.enqueue(ev);
    } catch (e) {
      // The store refused the write (disk full, locked past busy_timeout): say so loudly.
      log.error({ err: e, callId: ev.callId, event: ev.kind }, 'hooks for this event could not be queued');
    }
  });
  if (opts.ami) tracker.attachAmi(opts.ami);

  return {
    tracker,
    worker,
    start: () => worker.start(),
    async stop() {
      tracker.detach();
      await worker.stop({ graceMs: 2000 });
    },
    stageEntered: (entry) => tracker.stageEntered(entry),
    runInline: (name, ctx) => worker.runInline(name, ctx),
    callVars: (callId) => worker.callVars(callId),
    health() {
      const h = hookHealth(opts.store);
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
    logRoute(url) {
      try {
        return { status: 200, body: queryHookLog(opts.store, hookLogFilter(url.searchParams)) };
      } catch (e) {
        if (e instanceof RangeError) return { status: 400, body: { error: e.message } };
        throw e;
      }
    },
  };
}
