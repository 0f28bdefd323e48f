import type { CountryCode } from 'libphonenumber-js';
import { AmiPort } from '../asterisk/ami.js';
import { AriPort } from '../asterisk/ari.js';
import { CallEventTracker } from '../asterisk/call-events.js';
import type { FeatureRuntime, PostRoute, ProviderRoute, Route } from '../calls/feature.js';
import { CallMetrics, processMetrics } from '../calls/metrics.js';
import { StageRunner } from '../calls/runner.js';
import type { StepServices } from '../calls/services.js';
import type { Step } from '../calls/step.js';
import { createLogger, type Logger } from '../log.js';
import { openStore, type Store } from '../store/sqlite.js';
import { storeWrites } from '../store/write-health.js';
import { createSpeech } from '../tts/speaker.js';
import type { Config } from './config-schema.js';
import { FEATURES } from './features.js';
import { startHttpServer } from './http-server.js';
import { createStep, type StepSpec } from './steps.js';

export interface Service {
  readonly log: Logger;
  readonly url: string;
  readonly ari: AriPort;
  readonly ami: AmiPort | undefined;
  health(): Health;
  stop(): Promise<void>;
}

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

function storeHealth(store: Store): Health['store'] {
  const problem = storeWrites(store).problem();
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
}

/**
 * The composition root: the kernel (Asterisk ports, store, speech, stage runner, HTTP server)
 * and every feature of app/features.ts, each of which brings its own parts. The order matters
 * only for stop(): callers first, then features (reverse order), then the ports and the store.
 */
export async function startService(config: Config, opts: ServiceOptions = {}): Promise<Service> {
  const log = opts.log ?? createLogger({ level: config.log.level, secrets: opts.secrets });
  const store = openStore(config.store);
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
  if (followCalls && ami) tracker.attachAmi(ami);

  const context = {
    config: config as never,
    store,
    log,
    secrets: opts.secrets ?? [],
    defaultCountry: config.sms.defaultCountry as CountryCode | undefined,
    ami,
    tracker,
  };
  const features: Array<{ name: string; runtime: FeatureRuntime }> = [];
  for (const f of FEATURES) features.push({ name: f.name, runtime: await f.create(context) });

  const health = (): Health => {
    const h = {
      ari: { ready: ari.ready, ...ari.problem },
      ami: { ready: ami?.ready ?? false, configured: ami !== undefined },
      store: storeHealth(store),
      calls: runner.activeCalls,
    };
    const parts = features.flatMap(({ name, runtime }) => (runtime.health ? [[name, runtime.health()] as const] : []));
    const warnings = parts.flatMap(([, p]) => p.warnings ?? []);
    return { ok: h.ari.ready && h.store.ready && (!ami || h.ami.ready), ...h, ...Object.fromEntries(parts), warnings };
  };

  const metrics = new CallMetrics(new Set(Object.keys(config.stages)));
  const routes: Record<string, Route> = {
    '/health': () => {
      const h = health();
      return { status: h.ok ? 200 : 503, body: h };
    },
    '/metrics': () => ({ status: 200, body: { calls: runner.activeCalls, stages: metrics.snapshot(), process: processMetrics(metrics.loopDelay) } }),
  };
  const posts: Record<string, PostRoute> = {};
  const providerRoutes: Record<string, ProviderRoute> = {};
  for (const { runtime } of features) {
    Object.assign(routes, runtime.routes);
    Object.assign(posts, runtime.posts);
    Object.assign(providerRoutes, runtime.providerRoutes);
  }
  const http = await startHttpServer({ host: config.http.host, port: config.http.port, log, media: speech.media, routes, posts, providerRoutes });
  const mediaBase = (config.http.publicUrl ?? http.url).replace(/\/+$/, '') + '/media';

  const services = Object.assign({ tts: speech.speaker(mediaBase) }, ...features.map(({ runtime }) => runtime.services)) as StepServices;
  const stages = new Map<string, Step[]>(Object.entries(config.stages).map(([name, specs]) => [name, (specs as StepSpec[]).map(createStep)]));
  const fieldSources = features.flatMap(({ runtime }) => (runtime.mergeFields ? [runtime.mergeFields] : []));
  const runner = new StageRunner({
    ari,
    stages,
    services,
    log,
    callVars: fieldSources.length ? (callId) => Object.assign({}, ...fieldSources.map((f) => f(callId))) : undefined,
    metrics,
    defaultCountry: config.sms.defaultCountry as CountryCode | undefined,
    onStepSkipped: followCalls
      ? (session, skipped) => tracker.stepSkipped({ callId: session.callId, channelId: session.vars.channelId ?? '', stage: session.stage, step: skipped.step, reason: skipped.reason })
      : undefined,
    onStageEntered: followCalls
      ? (session, ev) => tracker.stageEntered({ callId: session.callId, channelId: ev.channel.id, stage: session.stage, vars: session.vars, exten: ev.channel.dialplan.exten })
      : undefined,
  });
  runner.start();
  for (const { runtime } of features) runtime.start?.();
  ari.start();
  ami?.start();
  log.info({ url: http.url, stages: [...stages.keys()], providers: Object.keys(config.sms.providers), hooks: config.hooks.length }, 'call-actions started');

  return {
    log,
    url: http.url,
    ari,
    ami,
    health,
    async stop() {
      metrics.loopDelay.stop();
      await runner.releaseAll();
      tracker.detach();
      await Promise.allSettled([ari.stop(), ami?.stop(), http.close(), ...features.map(({ runtime }) => runtime.stop?.())]);
      store.close();
      log.info('call-actions stopped');
      log.flush?.();
    },
  };
}
