import { StageRunner } from './calls/runner.js';
import type { Config } from './config/schema.js';
import type { CountryCode } from 'libphonenumber-js';
import { createCallActions, type CallActions, type HooksHealth } from './hooks/index.js';
import { createLogger, type Logger } from './log.js';
import { AmiPort } from './ports/ami.js';
import { AriPort } from './ports/ari.js';
import { startHttpServer } from './server.js';
import { querySmsHistory, type HistoryFilter } from './sms/history.js';
import { createHttpProvider } from './sms/http-provider.js';
import { Outbox, smsMigrations, type SmsStatus } from './sms/outbox.js';
import type { SmsProvider } from './sms/provider.js';
import { createStep, type StepSpec } from './steps/index.js';
import type { StepServices } from './steps/services.js';
import type { Step } from './steps/step.js';
import { openStore } from './store/sqlite.js';
import { createTtsCache } from './tts/cache.js';
import { createEspeakEngine } from './tts/espeak.js';
import { createMediaHandler, mediaUri } from './tts/media.js';

export interface Service {
  readonly log: Logger;
  readonly url: string;
  readonly ari: AriPort;
  readonly ami: AmiPort | undefined;
  readonly outbox: Outbox;
  readonly hooks: CallActions;
  health(): Health;
  stop(): Promise<void>;
}

export interface Health {
  ok: boolean;
  ari: { ready: boolean };
  ami: { ready: boolean; configured: boolean };
  store: { ready: boolean };
  calls: number;
  hooks: HooksHealth;
  /** Things an operator should look at; they do not make the service unhealthy. */
  warnings: string[];
}

/** Builds every part from a validated config and starts it; the order matters only for stop(). */
export async function startService(config: Config, opts: { secrets?: string[]; log?: Logger } = {}): Promise<Service> {
  const log = opts.log ?? createLogger({ level: config.log.level, secrets: opts.secrets });
  const store = openStore(config.store, { migrations: smsMigrations });

  const providers = new Map<string, SmsProvider>(
    Object.entries(config.sms.providers).map(([name, p]) => [name, createHttpProvider(name, p)]),
  );
  const outbox = new Outbox({ store, providers, logger: log.child({ component: 'outbox' }) });

  const engines = { 'espeak-ng': createEspeakEngine({ timeoutMs: config.tts.timeout, maxChars: config.tts.maxChars }) };
  const tts = createTtsCache({ dir: config.tts.cacheDir, engines, log });

  const ari = new AriPort({ ...config.asterisk.ari, timeoutMs: config.asterisk.ari.timeout, log: log.child({ component: 'ari' }) });
  const ami = config.asterisk.ami
    ? new AmiPort({ ...config.asterisk.ami, timeoutMs: config.asterisk.ami.timeout, log: log.child({ component: 'ami' }) })
    : undefined;
  const callActions = createCallActions({
    hooks: config.hooks,
    store,
    log,
    secrets: opts.secrets,
    defaultCountry: config.sms.defaultCountry as CountryCode | undefined,
    ami,
  });

  const health = (): Health => {
    const h = {
      ari: { ready: ari.ready },
      ami: { ready: ami?.ready ?? false, configured: ami !== undefined },
      store: { ready: store.ready() },
      calls: runner.activeCalls,
      hooks: callActions.health(),
    };
    return { ok: h.ari.ready && h.store.ready && (!ami || h.ami.ready), ...h, warnings: [...h.hooks.warnings] };
  };

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
      '/sms/history': (url) => ({ status: 200, body: querySmsHistory(store, historyFilter(url.searchParams)) }),
      '/hooks/log': (url) => callActions.logRoute(url),
    },
  });
  const mediaBase = (config.http.publicUrl ?? http.url).replace(/\/+$/, '') + '/media';

  const services: StepServices = {
    tts: {
      async speak(text, o) {
        const language = o.language ?? config.tts.language;
        const audio = await tts.get({ engine: config.tts.engine, language, voice: o.voice ?? config.tts.voice, text });
        return mediaUri(mediaBase, audio.id);
      },
    },
    sms: {
      templates: config.sms.templates,
      defaultCountry: config.sms.defaultCountry as StepServices['sms']['defaultCountry'],
      accept: (messages, once) => outbox.accept(messages, { once }),
      recordSkipped: (entry) => void outbox.recordSkipped(entry),
    },
    hooks: callActions,
  };

  const stages = new Map<string, Step[]>(
    Object.entries(config.stages).map(([name, specs]) => [name, (specs as StepSpec[]).map(createStep)]),
  );
  const runner = new StageRunner({
    ari,
    stages,
    services,
    log,
    callVars: callActions.callVars,
    onStageEntered: (session, ev) =>
      callActions.stageEntered({ callId: session.callId, channelId: ev.channel.id, stage: session.stage, vars: session.vars, exten: ev.channel.dialplan.exten }),
  });
  runner.start();
  outbox.start();
  callActions.start();
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
    health,
    async stop() {
      await runner.releaseAll();
      await Promise.allSettled([ari.stop(), ami?.stop(), outbox.stop({ graceMs: 2000 }), callActions.stop(), http.close()]);
      store.close();
      log.info('call-actions stopped');
      log.flush?.();
    },
  };
}

const STATUSES: readonly SmsStatus[] = ['pending', 'sending', 'sent', 'failed', 'skipped'];

export function historyFilter(q: URLSearchParams): HistoryFilter {
  const num = (k: string) => {
    const v = q.get(k);
    if (v === null) return undefined;
    const n = k === 'since' || k === 'until' ? Date.parse(v) || Number(v) : Number(v);
    if (!Number.isFinite(n)) throw new RangeError(`${k}: not a number or date: ${v}`);
    return n;
  };
  const status = q.getAll('status').filter((s): s is SmsStatus => (STATUSES as string[]).includes(s));
  return {
    callId: q.get('callId') ?? undefined,
    description: q.get('description') ?? undefined,
    recipient: q.get('recipient') ?? undefined,
    status: status.length ? status : undefined,
    since: num('since'),
    until: num('until'),
    limit: num('limit'),
    offset: num('offset'),
  };
}
