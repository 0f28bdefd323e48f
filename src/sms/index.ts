import { applyMigrations } from '../store/port.js';
import type { CountryCode } from 'libphonenumber-js';
import type { CallEventTracker } from '../asterisk/call-events.js';
import { defineFeature, requireId, type ProviderRoute } from '../calls/feature.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/port.js';
import type { SmsSink } from '../calls/services.js';
import { checkSms, SMS_SECTIONS, type SmsSection } from './config.js';
import { SMS_USAGE, smsCommand } from './cli.js';
import { historyFilter, querySmsHistory } from './history.js';
import { Outbox, smsMigrations } from './outbox.js';
import type { SmsProvider } from './provider.js';
import { createProvider, receiptPath } from './providers.js';
import { recordReceipt } from './receipts.js';
import { sms as smsStep } from './step.js';
import { smsRetention } from './retention.js';

/** The SMS step (TeleCube), its durable outbox and providers, and the SMS history. */
export const smsFeature = defineFeature<{ sms: SmsSection }>()({
  name: 'sms',
  sections: SMS_SECTIONS,
  steps: [smsStep],
  check: checkSms,
  commands: [{ name: 'sms', usage: SMS_USAGE, run: smsCommand }],
  create({ config, store, log, tracker, metrics, publicUrl: base }) {
    applyMigrations(store, smsMigrations);
    const publicUrl = base?.replace(/\/+$/, '');
    const providers = new Map<string, SmsProvider>(
      Object.entries(config.sms.providers).map(([name, p]) => [name, createProvider(name, p, publicUrl ? { receiptUrl: publicUrl + receiptPath(name) } : {})]),
    );
    // replaced in place on reload: a provider changed or added applies to sends from then on
    const outbox = new Outbox({ store, providers, limits: config.sms.limits, concurrency: config.sms.concurrency, logger: log.child({ component: 'outbox' }) });
    const defaultCountry = config.sms.defaultCountry as CountryCode | undefined;
    outbox.on('settled', (m) => metrics.sms.inc({ provider: m.provider, status: m.status }));
    metrics.onScrape(async () => {
      const d = (await store.one<{ n: number; oldest: number | null }>("SELECT count(*) AS n, min(created_at) AS oldest FROM sms_messages WHERE status IN ('pending', 'sending')"))!;
      metrics.outboxDepth.set(d.n);
      metrics.outboxOldestAge.set(d.oldest === null ? 0 : Math.max(0, (Date.now() - d.oldest) / 1000));
    });
    const accept: typeof outbox.accept = async (messages, opts) => {
      const result = await outbox.accept(messages, opts);
      if (!result.duplicate) {
        const blocked = new Set(result.blocked.map((b) => b.id));
        result.ids.forEach((id, i) => metrics.sms.inc({ provider: messages[i]?.provider ?? 'unknown', status: blocked.has(id) ? 'blocked' : 'accepted' }));
      }
      return result;
    };
    const sink = (c: SmsSection): SmsSink => ({
      templates: c.templates,
      defaultCountry: c.defaultCountry as CountryCode | undefined,
      accept: (messages, once) => accept(messages, { once }),
      hasOnce: (callId, key) => outbox.hasOnce(callId, key),
      recordSkipped: async (entry) => void (await outbox.recordSkipped(entry)),
    });
    let current = config.sms;
    return {
      services: { sms: sink(config.sms) },
      reload(next) {
        for (const [name, p] of Object.entries(next.sms.providers)) {
          if (JSON.stringify(p) !== JSON.stringify(current.providers[name])) providers.set(name, createProvider(name, p, publicUrl ? { receiptUrl: publicUrl + receiptPath(name) } : {}));
        }
        const restart = (['limits', 'concurrency'] as const).filter((k) => JSON.stringify(next.sms[k]) !== JSON.stringify(current[k])).map((k) => `sms.${k}`);
        current = next.sms;
        return { services: { sms: sink(next.sms) }, restart };
      },
      routes: {
        // historyFilter throws RangeError on a bad query, which the server answers with 400
        '/sms/history': async (url) => ({ status: 200, body: await querySmsHistory(store, historyFilter(url.searchParams, defaultCountry)) }),
      },
      actions: {
        '/sms/resend': async ({ body, actor }) => {
          const id = requireId(body);
          return (await outbox.resend(id, `re-sent by ${actor}`))
            ? { status: 202, body: { id, status: 'pending' } }
            : { status: 409, body: { error: `no failed SMS with id ${id}` } };
        },
      },
      retention: [smsRetention],
      // PUBLIC, provider-facing: the providers' servers post receipts here (each authenticated by
      // its provider's signature or shared secret), so these belong on the listener they reach
      providerRoutes: receiptRoutes(providers, store, log.child({ component: 'receipts' }), tracker),
      start: () => outbox.start(),
      wake: () => outbox.wake(),
      stop: () => outbox.stop({ graceMs: 2000 }),
    };
  },
});

/**
 * POST /sms/receipts/<provider> for each provider that reads receipts: 403 when the signature or
 * secret does not match (nothing changes), 400 for a request that is no receipt, 404 for a message
 * this service never sent (logged: a misrouted callback, or a store that was reset), 200 otherwise.
 * A receipt that moves a message to delivered, undelivered or failed is a call event (sms.delivered,
 * sms.failed) that hooks can act on.
 */
function receiptRoutes(providers: ReadonlyMap<string, SmsProvider>, store: Store, log: Logger, tracker: CallEventTracker): Record<string, ProviderRoute> {
  const routes: Record<string, ProviderRoute> = {};
  for (const [name, provider] of providers) {
    const read = provider.receipt?.bind(provider);
    if (!read) continue;
    routes[receiptPath(name)] = async (req) => {
      if (req.method !== 'POST' && req.method !== 'GET') return { status: 405, body: { error: 'POST (or GET) only' } };
      const parsed = read(req);
      if (!parsed.ok) {
        log.warn({ provider: name, status: parsed.status, reason: parsed.error }, 'delivery receipt refused');
        return { status: parsed.status, body: { error: parsed.error } };
      }
      const r = parsed.receipt;
      const outcome = await recordReceipt(store, name, r);
      if (outcome.kind === 'unknown') {
        log.warn({ provider: name, providerMessageId: r.messageId, providerStatus: r.providerStatus }, 'delivery receipt for a message this service did not send');
        return { status: 404, body: { error: `no message ${r.messageId} of provider ${name}` } };
      }
      const m = outcome.message;
      const fields = { callId: m.callId, smsId: m.id, provider: name, providerStatus: r.providerStatus, status: outcome.status, ...(r.errorCode ? { errorCode: r.errorCode } : {}) };
      if (!r.status) log.warn(fields, `delivery receipt with a state that maps to none of ours (kept; the status stays ${outcome.previous ?? 'unknown'})`);
      else log.info({ ...fields, changed: outcome.changed }, outcome.changed ? 'SMS delivery status changed' : 'delivery receipt recorded');
      const kind = outcome.changed && outcome.status ? (outcome.status === 'delivered' ? 'sms.delivered' : ['undelivered', 'failed'].includes(outcome.status) ? 'sms.failed' : undefined) : undefined;
      if (kind) {
        tracker.report(kind, m.callId, m.id, {
          smsId: m.id,
          smsTo: m.recipient,
          smsProvider: name,
          smsStatus: outcome.status!,
          smsStatusAt: new Date().toISOString(),
          smsError: r.errorCode ?? '',
          smsDescription: m.description,
        });
      }
      return { status: 200, body: { ok: true } };
    };
  }
  return routes;
}
