import { randomUUID } from 'node:crypto';
import { defineFeature } from '../calls/feature.js';
import { groupCommit } from '../store/group-commit.js';
import { ROUTES_USAGE, routesCommand } from './cli.js';
import { checkRouting, ROUTING_SECTIONS, type DestinationsConfig, type RoutingConfig } from './config.js';
import { gather } from './gather-step.js';
import { createRouteLog, routeLogFilter, type NewRouteLogEntry } from './history.js';
import { route } from './route-step.js';
import { routingRetention } from './retention.js';

/** Config as dynamic routing reads it (sms: the sms destination names a provider and template). */
type RoutingFeatureConfig = {
  store: string;
  routing: RoutingConfig;
  destinations: DestinationsConfig;
  tts: { language: string };
  sms: { providers: Record<string, unknown>; templates: Record<string, string> };
};

/** Dynamic routing (Netsantral): the route and gather steps, the destinations, the routing log. */
export const routingFeature = defineFeature<RoutingFeatureConfig>()({
  name: 'routing',
  sections: ROUTING_SECTIONS,
  steps: [route, gather],
  check: checkRouting,
  commands: [{ name: 'routes', usage: ROUTES_USAGE, run: routesCommand }],
  create({ config, store, log, secrets, metrics }) {
    const routeLog = createRouteLog(store);
    // one row per routed call: written in groups, so that no call waits for another call's fsync
    const rows = groupCommit<NewRouteLogEntry & { id: string }>(store, (tx, e) => routeLog.record(e, tx), {
      maxDelayMs: 100,
      maxRows: 500,
      onError: (err, failed) => log.error({ err, rows: failed }, 'the routing log could not be written'),
    });
    const routeLogSink = {
      record(e: NewRouteLogEntry & { id?: string }) {
        // the entry is the router's, handed over: it is not changed after this
        const id = (e.id ??= randomUUID());
        if (typeof e.latencyMs === 'number') metrics.routingLatency.observe({ outcome: e.outcome }, e.latencyMs / 1000);
        rows.push(e as NewRouteLogEntry & { id: string });
        return id;
      },
    };
    const services = (c: RoutingFeatureConfig) => ({
      routing: { routing: c.routing, destinations: c.destinations, defaultLanguage: c.tts.language, secrets, log: routeLogSink },
    });
    return {
      services: services(config),
      // routes and destinations are read per call: a reload applies to the next call
      reload: (next) => ({ services: services(next) }),
      routes: {
        // routeLogFilter throws RangeError on a bad query, which the server answers with 400
        '/routes/log': async (url) => {
          const filter = routeLogFilter(url.searchParams);
          await rows.flush();
          return { status: 200, body: await routeLog.query(filter) };
        },
      },
      retention: [routingRetention],
      stop: () => rows.flush(),
    };
  },
});
