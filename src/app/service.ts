import { randomUUID } from 'node:crypto';
import { StageRunner } from '../calls/runner.js';
import type { Config } from './config-schema.js';
import type { CountryCode } from 'libphonenumber-js';
import { createCallActions, type CallActions, type HooksHealth } from '../hooks/index.js';
import { createSalesforceLogging, type SalesforceHealth, type SalesforceLogging } from '../crm/salesforce/index.js';
import { readQuery } from '../history/query.js';
import { createLogger, type Logger } from '../log.js';
import { CallMetrics, processMetrics } from '../calls/metrics.js';
import { normaliseNumber } from '../phone.js';
import { AmiPort } from '../asterisk/ami.js';
import { AriPort } from '../asterisk/ari.js';
import { startHttpServer } from './http-server.js';
import { querySmsHistory, type HistoryFilter } from '../sms/history.js';
import { createHttpProvider } from '../sms/http-provider.js';
import { createTwilioProvider } from '../sms/twilio-provider.js';
import { Outbox, smsMigrations, type SmsStatus } from '../sms/outbox.js';
import type { SmsProvider } from '../sms/provider.js';
import { createStep, type StepSpec } from './steps.js';
import type { StepServices } from '../calls/services.js';
import type { Step } from '../calls/step.js';
import { groupCommit } from '../store/group-commit.js';
import { openStore } from '../store/sqlite.js';
import { createTtsCache } from '../tts/cache.js';
import { createEspeakEngine } from '../tts/espeak.js';
import { createOpenJtalkEngine } from '../tts/openjtalk.js';
import { createRouteLog, routeLogFilter, type NewRouteLogEntry } from '../routing/history.js';
import { createMediaHandler, mediaUri } from '../tts/media.js';

export interface Service {
  readonly log: Logger;
  readonly url: string;
  readonly ari: AriPort;
  readonly ami: AmiPort | undefined;
  readonly outbox: Outbox;
  readonly hooks: CallActions;
  readonly salesforce: SalesforceLogging | undefined;
  health(): Health;
  stop(): Promise<void>;
}

export interface Health {
  ok: boolean;
  /** `reason` (and the HTTP `status` Asterisk answered, if any) say why ARI is not ready */
  ari: { ready: boolean; reason?: string; status?: number; since?: string };
  ami: { ready: boolean; configured: boolean };
  store: { ready: boolean };
  calls: number;
  hooks: HooksHealth;
  salesforce?: SalesforceHealth;
  /** Things an operator should look at; they do not make the service unhealthy. */
  warnings: string[];
}

/** Builds every part from a validated config and starts it; the order matters only for stop(). */
export interface ServiceOptions {
  secrets?: string[];
  log?: Logger;
  /** `file:line:col` of a config field, so that errors found at run time point at the line to fix */
  place?: (path: readonly PropertyKey[]) => string;
  /** Asterisk refused the ARI credentials and `asterisk.ari.exitOnAuthError` is set: the caller stops the service */
  onFatal?: (message: string) => void;
}

export async function startService(config: Config, opts: ServiceOptions = {}): Promise<Service> {
  const log = opts.log ?? createLogger({ level: config.log.level, secrets: opts.secrets });
  const store = openStore(config.store, { migrations: smsMigrations });

  const providers = new Map<string, SmsProvider>(
    Object.entries(config.sms.providers).map(([name, p]) => [name, p.kind === 'twilio' ? createTwilioProvider(name, p) : createHttpProvider(name, p)]),
  );
  const routeLog = createRouteLog(store);
  // one row per routed call: written in groups, so that no call waits for another call's fsync
  const routeRows = groupCommit<NewRouteLogEntry & { id: string }>(store, (e) => void routeLog.record(e), {
    maxDelayMs: 100,
    maxRows: 500,
    onError: (err, rows) => log.error({ err, rows }, 'the routing log could not be written'),
  });
  const outbox = new Outbox({ store, providers, limits: config.sms.limits, concurrency: config.sms.concurrency, logger: log.child({ component: 'outbox' }) });

  const engines = {
    'espeak-ng': createEspeakEngine({ timeoutMs: config.tts.timeout, maxChars: config.tts.maxChars }),
    'open-jtalk': createOpenJtalkEngine({ timeoutMs: config.tts.timeout, maxChars: config.tts.maxChars }),
  };
  const tts = createTtsCache({ dir: config.tts.cacheDir, engines, log });

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
  const sfConfig = config.crm?.salesforce;
  // Call events are followed only for their consumers: otherwise every call would cost AMI
  // handling and a tracker entry for nothing.
  const followCalls = config.hooks.length > 0 || sfConfig !== undefined;
  const ami = config.asterisk.ami
    ? new AmiPort({ ...config.asterisk.ami, timeoutMs: config.asterisk.ami.timeout, log: log.child({ component: 'ami' }), events: followCalls })
    : undefined;
  const callActions = createCallActions({
    hooks: config.hooks,
    store,
    log,
    secrets: opts.secrets,
    defaultCountry: config.sms.defaultCountry as CountryCode | undefined,
    ami: followCalls ? ami : undefined,
  });
  const salesforce = sfConfig
    ? createSalesforceLogging({
        config: sfConfig,
        store,
        log,
        logLevel: config.log.level,
        ami,
        defaultCountry: (sfConfig.defaultCountry ?? config.sms.defaultCountry) as CountryCode | undefined,
      })
    : undefined;
  if (salesforce) callActions.tracker.on('event', (ev) => salesforce.onEvent(ev));

  const health = (): Health => {
    const h = {
      ari: { ready: ari.ready, ...ari.problem },
      ami: { ready: ami?.ready ?? false, configured: ami !== undefined },
      store: { ready: store.ready() },
      calls: runner.activeCalls,
      hooks: callActions.health(),
      ...(salesforce ? { salesforce: salesforce.health() } : {}),
    };
    return { ok: h.ari.ready && h.store.ready && (!ami || h.ami.ready), ...h, warnings: [...h.hooks.warnings, ...(h.salesforce?.warnings ?? [])] };
  };

  const metrics = new CallMetrics(new Set(Object.keys(config.stages)));
  const http = await startHttpServer({
    host: config.http.host,
    port: config.http.port,
    log,
    media: createMediaHandler({ cache: tts, prefix: '/media/' }),
    routes: {
      '/health': () => {
        const h = health();
        return { status: h.ok ? 200 : 503, body: h };
      },
      // historyFilter throws RangeError on a bad query, which the server answers with 400
      '/sms/history': (url) => ({ status: 200, body: querySmsHistory(store, historyFilter(url.searchParams, config.sms.defaultCountry as CountryCode | undefined)) }),
      '/hooks/log': (url) => callActions.logRoute(url),
      '/metrics': () => ({ status: 200, body: { calls: runner.activeCalls, stages: metrics.snapshot(), process: processMetrics() } }),
      // routeLogFilter throws RangeError on a bad query, which the server answers with 400
      '/routes/log': (url) => {
        routeRows.flush();
        return { status: 200, body: routeLog.query(routeLogFilter(url.searchParams)) };
      },
      '/salesforce/activities': (url) => salesforce?.activitiesRoute(url) ?? { status: 404, body: { error: 'crm.salesforce is not configured' } },
    },
  });
  const mediaBase = (config.http.publicUrl ?? http.url).replace(/\/+$/, '') + '/media';

  const services: StepServices = {
    tts: {
      async speak(text, o) {
        const language = o.language ?? config.tts.language;
        const engine = config.tts.engines[language.toLowerCase().split(/[-_]/)[0] ?? ''] ?? config.tts.engine;
        // tts.voice names a voice of tts.engine; another engine picks its own default
        const voice = o.voice ?? (engine === config.tts.engine ? config.tts.voice : undefined);
        const audio = await tts.get({ engine, language, voice, text });
        return mediaUri(mediaBase, audio.id);
      },
    },
    sms: {
      templates: config.sms.templates,
      defaultCountry: config.sms.defaultCountry as StepServices['sms']['defaultCountry'],
      accept: (messages, once) => outbox.accept(messages, { once }),
      hasOnce: (callId, key) => outbox.hasOnce(callId, key),
      recordSkipped: (entry) => void outbox.recordSkipped(entry),
    },
    hooks: callActions,
    routing: {
      routing: config.routing,
      destinations: config.destinations,
      defaultLanguage: config.tts.language,
      secrets: opts.secrets ?? [],
      log: {
        record(e) {
          const id = e.id ?? randomUUID();
          routeRows.push({ ...e, id });
          return id;
        },
      },
    },
  };

  const stages = new Map<string, Step[]>(
    Object.entries(config.stages).map(([name, specs]) => [name, (specs as StepSpec[]).map(createStep)]),
  );
  const runner = new StageRunner({
    ari,
    stages,
    services,
    log,
    // only hooks that extract can have left variables for a call
    callVars: config.hooks.some((h) => h.extract.length > 0) ? callActions.callVars : undefined,
    metrics,
    onStageEntered: followCalls
      ? (session, ev) =>
          callActions.stageEntered({ callId: session.callId, channelId: ev.channel.id, stage: session.stage, vars: session.vars, exten: ev.channel.dialplan.exten })
      : undefined,
  });
  runner.start();
  outbox.start();
  callActions.start();
  salesforce?.start();
  ari.start();
  ami?.start();
  log.info({ url: http.url, stages: [...stages.keys()], providers: [...providers.keys()], hooks: config.hooks.length }, 'call-actions started');

  return {
    log,
    url: http.url,
    ari,
    ami,
    outbox,
    hooks: callActions,
    salesforce,
    health,
    async stop() {
      await runner.releaseAll();
      await Promise.allSettled([ari.stop(), ami?.stop(), outbox.stop({ graceMs: 2000 }), callActions.stop(), salesforce?.stop(), http.close()]);
      routeRows.flush();
      store.close();
      log.info('call-actions stopped');
      log.flush?.();
    },
  };
}

export const SMS_STATUSES: readonly SmsStatus[] = ['pending', 'sending', 'sent', 'failed', 'skipped', 'blocked'];

const HISTORY_PARAMS = ['callId', 'description', 'recipient', 'number', 'status', 'since', 'until', 'limit', 'offset'];

/**
 * `/sms/history?description=…&number=…&callId=…&status=sent&status=failed&since=ISO&until=ISO&limit=&offset=`.
 * A parameter it does not know, a status that does not exist or a time that does not parse is a
 * RangeError (answered 400): a typo must not silently widen the query to everything.
 */
export function historyFilter(q: URLSearchParams, defaultCountry?: CountryCode): HistoryFilter {
  const r = readQuery(q, HISTORY_PARAMS);
  const statuses = r.oneOf('status', SMS_STATUSES);
  const number = r.text('number') ?? r.text('recipient');
  return {
    callId: r.text('callId'),
    description: r.text('description'),
    recipient: number === undefined ? undefined : normaliseNumber(number, defaultCountry),
    status: statuses.length ? statuses : undefined,
    since: r.time('since'),
    until: r.time('until'),
    limit: r.count('limit'),
    offset: r.count('offset'),
  };
}
