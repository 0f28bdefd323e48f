import type { CountryCode } from 'libphonenumber-js';
import { defineFeature } from '../../calls/feature.js';
import { SALESFORCE_SECTIONS, type CrmConfig } from './config.js';
import { createSalesforceLogging } from './logging.js';
import { salesforceRetention } from './retention.js';

type SalesforceFeatureConfig = { crm?: CrmConfig; log: { level: string }; console?: { publicUrl?: string } };

/** Salesforce activity logging (MiiTel): one Task per call, from the call events. */
export const salesforceFeature = defineFeature<SalesforceFeatureConfig>()({
  name: 'salesforce',
  sections: SALESFORCE_SECTIONS,
  followsCalls: (c) => c.crm?.salesforce !== undefined,
  create({ config, store, log, ami, tracker, defaultCountry }) {
    const sf = config.crm?.salesforce;
    const off = { status: 404, body: { error: 'crm.salesforce is not configured' } };
    if (!sf) return { routes: { '/salesforce/activities': () => off }, actions: { '/salesforce/memo': () => off } };
    const salesforce = createSalesforceLogging({
      // console.publicUrl: each Task's comment links to the call's console page
      config: config.console?.publicUrl ? Object.assign({}, sf, { callPageBase: config.console.publicUrl }) : sf,
      store,
      log,
      logLevel: config.log.level,
      ami,
      defaultCountry: (sf.defaultCountry as CountryCode | undefined) ?? defaultCountry,
    });
    tracker.on('event', (ev) => salesforce.onEvent(ev));
    return {
      routes: { '/salesforce/activities': (url) => salesforce.activitiesRoute(url) },
      // an agent's CTI posts the memo with an admin token: it writes to the call's Task
      actions: { '/salesforce/memo': ({ body }) => salesforce.memoRoute(body) },
      retention: [salesforceRetention],
      health: () => salesforce.health(),
      start: () => salesforce.start(),
      wake: () => salesforce.wake(),
      stop: () => salesforce.stop(),
    };
  },
});
