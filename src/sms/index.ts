import type { CountryCode } from 'libphonenumber-js';
import { defineFeature, requireId } from '../calls/feature.js';
import { checkSms, SMS_SECTIONS, type SmsSection } from './config.js';
import { SMS_USAGE, smsCommand } from './cli.js';
import { historyFilter, querySmsHistory } from './history.js';
import { Outbox, smsMigrations } from './outbox.js';
import type { SmsProvider } from './provider.js';
import { createProvider } from './providers.js';
import { sms as smsStep } from './step.js';
import { smsRetention } from './retention.js';

/** The SMS step (TeleCube), its durable outbox and providers, and the SMS history. */
export const smsFeature = defineFeature<{ sms: SmsSection }>()({
  name: 'sms',
  sections: SMS_SECTIONS,
  steps: [smsStep],
  check: checkSms,
  commands: [{ name: 'sms', usage: SMS_USAGE, run: smsCommand }],
  create({ config, store, log, metrics }) {
    store.migrate(smsMigrations);
    const providers = new Map<string, SmsProvider>(
      Object.entries(config.sms.providers).map(([name, p]) => [name, createProvider(name, p)]),
    );
    const outbox = new Outbox({ store, providers, limits: config.sms.limits, concurrency: config.sms.concurrency, logger: log.child({ component: 'outbox' }) });
    const defaultCountry = config.sms.defaultCountry as CountryCode | undefined;
    outbox.on('settled', (m) => metrics.sms.inc({ provider: m.provider, status: m.status }));
    const depth = store.db.prepare<[], { n: number; oldest: number | null }>("SELECT count(*) AS n, min(created_at) AS oldest FROM sms_messages WHERE status IN ('pending', 'sending')");
    metrics.onScrape(() => {
      const d = depth.get()!;
      metrics.outboxDepth.set(d.n);
      metrics.outboxOldestAge.set(d.oldest === null ? 0 : Math.max(0, (Date.now() - d.oldest) / 1000));
    });
    const accept: typeof outbox.accept = (messages, opts) => {
      const result = outbox.accept(messages, opts);
      if (!result.duplicate) {
        const blocked = new Set(result.blocked.map((b) => b.id));
        result.ids.forEach((id, i) => metrics.sms.inc({ provider: messages[i]?.provider ?? 'unknown', status: blocked.has(id) ? 'blocked' : 'accepted' }));
      }
      return result;
    };
    return {
      services: {
        sms: {
          templates: config.sms.templates,
          defaultCountry,
          accept: (messages, once) => accept(messages, { once }),
          hasOnce: (callId, key) => outbox.hasOnce(callId, key),
          recordSkipped: (entry) => void outbox.recordSkipped(entry),
        },
      },
      routes: {
        // historyFilter throws RangeError on a bad query, which the server answers with 400
        '/sms/history': (url) => ({ status: 200, body: querySmsHistory(store, historyFilter(url.searchParams, defaultCountry)) }),
      },
      actions: {
        '/sms/resend': ({ body, actor }) => {
          const id = requireId(body);
          return outbox.resend(id, `re-sent by ${actor}`)
            ? { status: 202, body: { id, status: 'pending' } }
            : { status: 409, body: { error: `no failed SMS with id ${id}` } };
        },
      },
      retention: [smsRetention],
      start: () => outbox.start(),
      stop: () => outbox.stop({ graceMs: 2000 }),
    };
  },
});
