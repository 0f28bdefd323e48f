import type { CountryCode } from 'libphonenumber-js';
import { AmiPort } from '../asterisk/ami.js';
import { AriPort } from '../asterisk/ari.js';
import { CallEventTracker } from '../asterisk/call-events.js';
import { AdminAuth } from '../admin/auth.js';
import { redactConfig } from '../admin/config-view.js';
import { consoleFiles } from '../admin/console-files.js';
import { LiveCalls } from '../admin/live.js';
import { liveStream } from '../admin/live-stream.js';
import { CallTimeline } from '../admin/timeline.js';
import type { Action, FeatureRuntime, ProviderRoute, Route } from '../calls/feature.js';
import { CallMetrics, processMetrics } from '../calls/metrics.js';
import { StageRunner } from '../calls/runner.js';
import type { StepServices } from '../calls/services.js';
import type { Step } from '../calls/step.js';
import { createLogger, type Logger } from '../log.js';
import { createMetrics } from '../metrics.js';
import { readQuery } from '../history/query.js';
import { openAuditLog } from '../store/audit.js';
import { auditRetention, startRetention } from '../store/retention.js';
import { openAnyStore } from '../store/open.js';
import { maskUrl, type Store } from '../store/port.js';
import { salesforceMigrations } from '../crm/salesforce/store.js';
import { hookMigrations } from '../hooks/store.js';
import { routeMigrations } from '../routing/history.js';
import { smsMigrations } from '../sms/store.js';
import { pairMigrations } from './pair.js';
import { storeWrites } from '../store/write-health.js';
import { createSpeech } from '../tts/speaker.js';
import type { Config } from './config-schema.js';
import { FEATURES } from './features.js';
import { listenersOf } from './http-config.js';
import { GcPauses } from './gc-pauses.js';
import { memoryBreakdown } from './memory.js';
import { startHttpServer, type HttpListener } from './http-server.js';
import { PairWatch } from './pair.js';
import { createStep, type StepSpec } from './steps.js';

/** API routes whose answers hold phone numbers: an admin token reading them is audited as `reveal`. */
const REVEALING = new Set(['/sms/history', '/hooks/log', '/routes/log', '/salesforce/activities', '/calls/timeline']);
/** Only an admin token reads these: the config (even redacted) and who did what. */
const ADMIN_ONLY = new Set(['/config', '/audit/log']);
/** The logs a call page gathers, by the key the page reads them under. */
const CALL_LOGS = { sms: '/sms/history', hooks: '/hooks/log', routing: '/routes/log', salesforce: '/salesforce/activities' } as const;

export interface Service {
  readonly log: Logger;
  /** the admin listener's URL (API, console, metrics) */
  readonly url: string;
  /** the listener Asterisk fetches TTS media from (the same as `url` with one listener) */
  readonly mediaUrl: string;
  readonly ari: AriPort;
  readonly ami: AmiPort | undefined;
  health(): Promise<Health>;
  /**
   * Drains, then stops: new calls are refused at once (the dialplan tries the peer or its
   * fallback), calls in progress get up to `shutdown.drain` to finish their stage (less when `cut`
   * fires or ARI is down), the rest are handed back with CALL_ACTIONS_RESULT=error; then the
   * workers finish their in-flight requests, and the store and the log are closed.
   */
  stop(opts?: { cut?: AbortSignal }): Promise<void>;
  /**
   * Reads the config file again (`ServiceOptions.reload`) and, when it is valid, runs new calls
   * on it; calls in progress finish on the old one. An invalid file changes nothing.
   */
  reload(): ReloadResult;
}

export type ReloadResult =
  | { ok: true; stages: string[]; restartNeeded: string[] }
  /** `error`: the same file:line:col lines `call-actions validate` prints */
  | { ok: false; error: string };

export interface Health {
  ok: boolean;
  /** `reason` (and the HTTP `status` Asterisk answered, if any) say why ARI is not ready */
  ari: { ready: boolean; reason?: string; status?: number; since?: string };
  ami: { ready: boolean; configured: boolean };
  /** `error` says why writes fail (a full disk, a read-only store); accepted work waits meanwhile */
  store: { ready: boolean; error?: string; since?: string };
  calls: number;
  /** each feature's own health, under its name (hooks, salesforce) */
  [feature: string]: unknown;
  /** Things an operator should look at; they do not make the service unhealthy. */
  warnings: string[];
}

/**
 * A part of /health that reads the store (a feature's backlog, the pair's peers): while the store
 * does not answer, the part says so and /health still answers, 503 for the store's sake.
 */
async function unavailable<T>(read: () => T | Promise<T>): Promise<T | { unavailable: string; warnings: string[] }> {
  try {
    return await read();
  } catch (e) {
    return { unavailable: (e as Error).message, warnings: [] };
  }
}

export async function storeHealth(store: Store): Promise<Health['store']> {
  const outage = store.outage();
  if (outage) return { ready: false, error: `${outage.message}; accepted SMS, hook runs and CRM activities wait until it is back`, since: outage.since };
  const problem = await storeWrites(store).problem();
  if (!problem) return { ready: store.ready() };
  return { ready: false, error: `the store cannot be written (${problem.code}: ${problem.message}); accepted SMS, hook runs and CRM activities wait until it can`, since: problem.since };
}

export interface ServiceOptions {
  secrets?: string[];
  log?: Logger;
  /** `file:line:col` of a config field, so that errors found at run time point at the line to fix */
  place?: (path: readonly PropertyKey[]) => string;
  /** Asterisk refused the ARI credentials and `asterisk.ari.exitOnAuthError` is set: the caller stops the service */
  onFatal?: (message: string) => void;
  /** Reads and validates the config file again (throws ConfigError); without it, reload() refuses. */
  reload?: () => { config: Config };
  /** Ends a start still waiting for its database (SIGTERM then): startService rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Kernel sections a running service cannot take over (the connections, the store, the listener, the TTS cache). */
const RESTART_SECTIONS = ['asterisk', 'store', 'http', 'tts', 'pair'] as const;

/**
 * The composition root: the kernel (Asterisk ports, store, speech, stage runner, HTTP server)
 * and every feature of app/features.ts, each of which brings its own parts. The order matters
 * only for stop(): callers first, then features (reverse order), then the ports and the store.
 */
export async function startService(config: Config, opts: ServiceOptions = {}): Promise<Service> {
  const log = opts.log ?? createLogger({ level: config.log.level, secrets: opts.secrets });
  // every feature's tables before any feature exists: on PostgreSQL migrations are async, and
  // features construct synchronously
  // A PostgreSQL that does not answer yet is waited for (a pair's database restarting, a container
  // started before its database): Asterisk meanwhile offers the calls to the peer or the fallback,
  // as for any instance that is not running. Nothing listens until then: the HTTP routes are the
  // features', and the features need their tables.
  let store: Store;
  try {
    store = await openAnyStore(config.store, {
      secrets: opts.secrets,
      log: log.child({ component: 'store' }),
      wait: { signal: opts.signal },
      migrations: [...smsMigrations, ...hookMigrations, ...salesforceMigrations, ...routeMigrations, ...pairMigrations],
    });
  } catch (e) {
    if (opts.signal?.aborted) log.info('stopped while waiting for the store: nothing was started');
    else log.error({ err: e }, 'the store cannot be opened');
    log.flush?.();
    throw e;
  }
  const audit = openAuditLog(store);
  const speech = createSpeech(config.tts, log);

  const ariLog = log.child({ component: 'ari' });
  const ari = new AriPort({
    ...config.asterisk.ari,
    timeoutMs: config.asterisk.ari.timeout,
    log: ariLog,
    onAuthRefused(status) {
      const where = opts.place ? `${opts.place(['asterisk', 'ari', 'password'])}: ` : '';
      const message = `${where}asterisk.ari.password: Asterisk refused the ARI credentials (${status})`;
      const exit = config.asterisk.ari.exitOnAuthError;
      ariLog.error({ status }, exit ? message : `${message}; retrying (asterisk.ari.exitOnAuthError stops instead)`);
      if (!exit) return 'retry';
      opts.onFatal?.(message);
      return 'stop';
    },
  });
  // Call events are followed only for the features that read them: otherwise every call would
  // cost AMI handling and a tracker entry for nothing.
  const followCalls = FEATURES.some((f) => f.followsCalls?.(config as never) ?? false);
  const ami = config.asterisk.ami
    ? new AmiPort({ ...config.asterisk.ami, timeoutMs: config.asterisk.ami.timeout, log: log.child({ component: 'ami' }), events: followCalls })
    : undefined;
  const tracker = new CallEventTracker(log.child({ component: 'events' }), undefined, undefined, config.sms.defaultCountry as CountryCode | undefined);
  const prom = createMetrics();
  const live = new LiveCalls();
  live.setMaxListeners(0);
  const timeline = new CallTimeline();
  tracker.on('event', (ev) => timeline.callEvent(ev));
  if (followCalls && ami) tracker.attachAmi(ami);

  const context = {
    config: config as never,
    store,
    log,
    secrets: opts.secrets ?? [],
    defaultCountry: config.sms.defaultCountry as CountryCode | undefined,
    ami,
    tracker,
    metrics: prom,
    publicUrl: listenersOf(config.http).find((l) => l.media)?.publicUrl,
  };
  const features: Array<{ name: string; sections: string[]; runtime: FeatureRuntime<never> }> = [];
  for (const f of FEATURES) features.push({ name: f.name, sections: Object.keys(f.sections), runtime: (await f.create(context)) as FeatureRuntime<never> });

  const health = async (): Promise<Health> => {
    const h = {
      ari: { ready: ari.ready, ...ari.problem },
      ami: { ready: ami?.ready ?? false, configured: ami !== undefined },
      store: await storeHealth(store),
      calls: runner.activeCalls,
      ...(config.pair.peers.length ? { pair: { app: config.asterisk.ari.app, peers: await unavailable(() => pair.peers()) } } : {}),
    };
    const parts = await Promise.all(features.flatMap(({ name, runtime }) => (runtime.health ? [(async () => [name, await unavailable(() => runtime.health!())] as const)()] : [])));
    const warnings = parts.flatMap(([, p]) => p.warnings ?? []);
    return { ok: h.ari.ready && h.store.ready && (!ami || h.ami.ready), ...h, ...Object.fromEntries(parts), warnings };
  };

  const stageNames = new Set(Object.keys(config.stages));
  const metrics = new CallMetrics(stageNames);
  const gcPauses = new GcPauses();
  gcPauses.start();
  const routes: Record<string, Route> = {
    '/health': async () => {
      const h = await health();
      return { status: h.ok ? 200 : 503, body: h };
    },
    '/metrics': async () => ({ status: 200, body: await prom.text(), contentType: prom.contentType }),
    // the benchmark's histograms (finer buckets, read as deltas; bench/run.js)
    '/stats': () => ({
      status: 200,
      body: { calls: runner.activeCalls, stages: metrics.snapshot(), process: { ...processMetrics(metrics.loopDelay), memory: memoryBreakdown(store.pageCache), gcPauses: gcPauses.snapshot() } },
    }),
  };
  routes['/audit/log'] = async (url) => {
    const q = readQuery(url.searchParams, ['action', 'limit', 'offset']);
    return { status: 200, body: { entries: await audit.list({ action: q.text('action'), limit: q.count('limit'), offset: q.count('offset') }) } };
  };
  // the store URL's password (postgres://user:…@host/db) is not a field of its own: masked here
  const shownStore = typeof config.store === 'string' ? maskUrl(config.store) : { ...config.store, url: maskUrl(config.store.url) };
  routes['/config'] = () => ({ status: 200, body: redactConfig({ ...config, store: shownStore }, opts.secrets ?? []) });
  routes['/calls/timeline'] = async (url) => {
    const callId = readQuery(url.searchParams, ['callId']).text('callId');
    if (!callId) throw new RangeError('callId: required');
    const logs: Record<string, unknown[]> = {};
    for (const [key, path] of Object.entries(CALL_LOGS)) {
      const route = routes[path];
      const answer = route ? await route(new URL(`${path}?callId=${encodeURIComponent(callId)}&limit=500`, 'http://localhost')) : undefined;
      logs[key] = answer?.status === 200 ? ((answer.body as { entries?: unknown[] }).entries ?? []) : [];
    }
    return { status: 200, body: { callId, timeline: timeline.of(callId), ...logs } };
  };
  const actions: Record<string, Action> = {
    // `call-actions reload` and SIGHUP: re-read the config file
    '/admin/reload': () => {
      const r = service.reload();
      return { status: r.ok ? 200 : 422, body: r };
    },
  };
  const providerRoutes: Record<string, ProviderRoute> = {};
  for (const { runtime } of features) {
    Object.assign(routes, runtime.routes);
    Object.assign(actions, runtime.actions);
    Object.assign(providerRoutes, runtime.providerRoutes);
  }
  const retention = startRetention(store, [...features.flatMap(({ runtime }) => runtime.retention ?? []), auditRetention], config.retention, log.child({ component: 'retention' }));

  const listeners = listenersOf(config.http);
  const consoleHost = config.console.publicUrl ? [new URL(config.console.publicUrl).host] : [];
  const ownHosts = listeners.filter((l) => l.admin && !['0.0.0.0', '::', ''].includes(l.host)).map((l) => l.host);
  const auth = new AdminAuth(config.http.tokens, [...config.http.allowedHosts, ...ownHosts, ...consoleHost]);
  if (auth.open) log.warn('http.tokens is empty: the admin API and console are open to anyone who can reach the loopback address');
  const servers: Array<{ listener: (typeof listeners)[number]; http: HttpListener }> = [];
  try {
    for (const listener of listeners) {
      const http = await startHttpServer({
        listener,
        log,
        media: speech.media,
        auth,
        audit,
        routes,
        actions,
        providerRoutes,
        liveness: async () => (await health()).ok,
        reveals: (path) => REVEALING.has(path),
        adminOnly: (path) => ADMIN_ONLY.has(path),
        streams: { '/live': liveStream(live) },
        publicFile: consoleFiles(),
      });
      servers.push({ listener, http });
    }
  } catch (e) {
    await Promise.allSettled(servers.map((s) => s.http.close()));
    retention.stop();
    store.close();
    throw e;
  }
  const adminHttp = servers.find((s) => s.listener.admin)!;
  const mediaHttp = servers.find((s) => s.listener.media)!;
  const mediaBase = (mediaHttp.listener.publicUrl ?? mediaHttp.http.url).replace(/\/+$/, '') + '/media';

  const tts = speech.speaker(mediaBase);
  const services = Object.assign({ tts }, ...features.map(({ runtime }) => runtime.services)) as StepServices;
  const buildStages = (c: Config) => new Map<string, Step[]>(Object.entries(c.stages).map(([name, specs]) => [name, (specs as StepSpec[]).map(createStep)]));
  const stages = buildStages(config);
  const fieldSources = features.flatMap(({ runtime }) => (runtime.mergeFields ? [runtime.mergeFields] : []));
  const runner = new StageRunner({
    ari,
    stages,
    services,
    log,
    callVars: fieldSources.length ? async (callId) => Object.assign({}, ...(await Promise.all(fieldSources.map((f) => f(callId))))) : undefined,
    metrics,
    defaultCountry: config.sms.defaultCountry as CountryCode | undefined,
    onStepSkipped: followCalls
      ? (session, skipped) => tracker.stepSkipped({ callId: session.callId, channelId: session.vars.channelId ?? '', stage: session.stage, step: skipped.step, reason: skipped.reason })
      : undefined,
    observers: [
      live,
      timeline,
      {
        stageEntered: (s) => {
          prom.stageCalls.inc({ stage: s.stage });
          prom.activeCalls.inc({ stage: s.stage });
        },
        stepDone: (s, step, result) => prom.steps.inc({ stage: s.stage, step: step.kind, result }),
        stageEnded: (s, outcome) => {
          prom.stageEnds.inc({ stage: s.stage, outcome });
          prom.activeCalls.dec({ stage: s.stage });
        },
      },
    ],
    onStageEntered: followCalls
      ? (session, ev) => tracker.stageEntered({ callId: session.callId, channelId: ev.channel.id, stage: session.stage, vars: session.vars, exten: ev.channel.dialplan.exten })
      : undefined,
  });
  prom.onScrape(() => {
    prom.asteriskUp.set({ connection: 'ari' }, ari.ready ? 1 : 0);
    if (ami) prom.asteriskUp.set({ connection: 'ami' }, ami.ready ? 1 : 0);
  });
  const pair = new PairWatch({
    config: config.pair,
    app: config.asterisk.ari.app,
    store,
    ari: {
      get ready() {
        return ari.ready;
      },
      listChannels: () => ari.listChannels(),
      async handBack(id, vars) {
        // no release(): that would drop the handlers our own runner registers when the call,
        // offered to us next by the dialplan, arrives before this request has returned
        const channel = ari.channel(id);
        await channel.setVars(vars);
        await channel.continueInDialplan();
      },
    },
    wake: () => features.forEach(({ runtime }) => runtime.wake?.()),
    log: log.child({ component: 'pair' }),
  });
  runner.start();
  for (const { runtime } of features) runtime.start?.();
  ari.start();
  ami?.start();
  await pair.start();
  log.info({ url: adminHttp.http.url, media: mediaHttp.http.url, stages: [...stages.keys()], providers: Object.keys(config.sms.providers), hooks: config.hooks.length }, 'call-actions started');

  const service: Service = {
    log,
    url: adminHttp.http.url,
    mediaUrl: mediaHttp.http.url,
    ari,
    ami,
    health,
    reload() {
      let next: Config;
      try {
        if (!opts.reload) throw new Error('this service was not started from a config file');
        next = opts.reload().config;
      } catch (e) {
        const error = (e as Error).message;
        log.warn({ error }, 'config reload refused: the running config stays');
        return { ok: false, error };
      }
      const changed = (a: unknown, b: unknown) => JSON.stringify(a) !== JSON.stringify(b);
      const restartNeeded: string[] = RESTART_SECTIONS.filter((k) => changed(config[k], next[k]));
      let nextServices: StepServices;
      let nextStages: Map<string, Step[]>;
      try {
        const parts = features.map(({ runtime, sections }) => {
          if (runtime.reload) {
            const r = runtime.reload(next as never);
            restartNeeded.push(...(r.restart ?? []));
            return r.services;
          }
          restartNeeded.push(...sections.filter((k) => changed((config as Record<string, unknown>)[k], (next as Record<string, unknown>)[k])));
          return runtime.services;
        });
        nextServices = Object.assign({ tts }, ...parts) as StepServices;
        nextStages = buildStages(next);
      } catch (e) {
        log.error({ err: e }, 'config reload failed: the running config stays');
        return { ok: false, error: (e as Error).message };
      }
      for (const name of nextStages.keys()) stageNames.add(name);
      runner.replaceStages({ stages: nextStages, services: nextServices });
      if (next.log.level !== config.log.level) log.level = next.log.level;
      // the sections applied from now on (the rest wait for a restart, as listed)
      config.stages = next.stages;
      config.shutdown = next.shutdown;
      config.log = next.log;
      for (const { sections, runtime } of features) if (runtime.reload) for (const k of sections) (config as Record<string, unknown>)[k] = (next as Record<string, unknown>)[k];
      const result = { ok: true as const, stages: [...nextStages.keys()], restartNeeded };
      log.info(result, restartNeeded.length ? 'config reloaded; some changes wait for a restart' : 'config reloaded');
      return result;
    },
    async stop({ cut }: { cut?: AbortSignal } = {}) {
      metrics.loopDelay.stop();
      gcPauses.stop();
      // with ARI down nothing can be played to a caller: waiting would only be silence
      const ariDown = new AbortController();
      if (!ari.ready) ariDown.abort();
      ari.onStatus((up) => void (up || ariDown.abort()));
      const drained = await runner.drain(config.shutdown.drain, cut ? AbortSignal.any([cut, ariDown.signal]) : ariDown.signal);
      log.info({ ...drained, drainMs: config.shutdown.drain, ari: ari.ready ? 'up' : 'down' }, drained.left ? 'drain over: handing the calls left back to the dialplan' : 'drained');
      await runner.releaseAll();
      tracker.detach();
      retention.stop();
      await Promise.allSettled([ari.stop(), ami?.stop(), ...servers.map((s) => s.http.close()), ...features.map(({ runtime }) => runtime.stop?.())]);
      // only now, with no caller left in our application: a peer that saw us stopped during the
      // drain would take our callers back mid-stage. From here it takes over our queued work at once.
      await pair.stop();
      await store.close();
      log.info('call-actions stopped');
      log.flush?.();
    },
  };
  return service;
}
