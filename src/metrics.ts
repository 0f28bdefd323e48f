import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * What `GET /metrics` (admin listener) reports in the Prometheus text format, through prom-client:
 * the process (prom-client's default metrics: CPU, memory, GC, event-loop lag), calls per stage,
 * step results, SMS per provider, the outbox's depth and age, hook attempts, routing API latency
 * and the Asterisk connections. Features count through the object their context hands them;
 * gauges that describe the store are read when Prometheus scrapes (`onScrape`).
 *
 * The benchmark's own histograms (finer buckets, readable as deltas) stay at `/stats` as JSON.
 */
export interface Metrics {
  readonly registry: Registry;
  /** a call entered a stage */
  stageCalls: Counter<'stage'>;
  /** how a visit to a stage ended: left (handed back as planned), fallback, gone (hung up) */
  stageEnds: Counter<'stage' | 'outcome'>;
  /** calls now held in a stage */
  activeCalls: Gauge<'stage'>;
  /** a step's result: next, handed-off, fallback, error */
  steps: Counter<'stage' | 'step' | 'result'>;
  /** SMS by provider and status: accepted, sent, failed, blocked, skipped */
  sms: Counter<'provider' | 'status'>;
  outboxDepth: Gauge;
  outboxOldestAge: Gauge;
  /** hook attempts by outcome: ok, retry, final, unexpected, interrupted */
  hookAttempts: Counter<'hook' | 'outcome'>;
  /** the routing API's answer time, by outcome */
  routingLatency: Histogram<'outcome'>;
  /** 1 while connected */
  asteriskUp: Gauge<'connection'>;
  /** Runs before every scrape: gauges read from the store or the ports. */
  /** Runs before each scrape; a promise is awaited (a gauge read from the store). */
  onScrape(fn: () => void | Promise<void>): void;
  text(): Promise<string>;
  readonly contentType: string;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  // nodejs_eventloop_lag_*: prom-client samples it with a timer of this period for as long as the
  // process runs. At 20 ms that timer alone was 0.34 % of a core in an idle service (measured with
  // process.cpuUsage over 10 s; 0.05 % at 1 s), most of issue 14's 0.5 % idle budget. Once a second
  // still catches stalls of a second; the 20 ms histogram in /stats samples while calls are in a stage.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 1000 });
  const scrapers: Array<() => void | Promise<void>> = [];
  const registers = [registry];
  return {
    registry,
    stageCalls: new Counter({ name: 'call_actions_stage_calls_total', help: 'Calls that entered a stage', labelNames: ['stage'], registers }),
    stageEnds: new Counter({ name: 'call_actions_stage_ends_total', help: 'Visits to a stage by how they ended', labelNames: ['stage', 'outcome'], registers }),
    activeCalls: new Gauge({ name: 'call_actions_active_calls', help: 'Calls held in a stage now', labelNames: ['stage'], registers }),
    steps: new Counter({ name: 'call_actions_steps_total', help: 'Steps run, by result', labelNames: ['stage', 'step', 'result'], registers }),
    sms: new Counter({ name: 'call_actions_sms_total', help: 'SMS by provider and status (accepted, sent, failed, blocked, skipped)', labelNames: ['provider', 'status'], registers }),
    outboxDepth: new Gauge({ name: 'call_actions_sms_outbox_depth', help: 'SMS waiting in the outbox (pending or sending)', registers }),
    outboxOldestAge: new Gauge({ name: 'call_actions_sms_outbox_oldest_age_seconds', help: 'Age of the oldest SMS waiting in the outbox (0 when empty)', registers }),
    hookAttempts: new Counter({ name: 'call_actions_hook_attempts_total', help: 'Hook attempts by outcome', labelNames: ['hook', 'outcome'], registers }),
    routingLatency: new Histogram({
      name: 'call_actions_routing_api_seconds',
      help: "The routing API's answer time",
      labelNames: ['outcome'],
      buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10],
      registers,
    }),
    asteriskUp: new Gauge({ name: 'call_actions_asterisk_connected', help: '1 while the connection to Asterisk is up', labelNames: ['connection'], registers }),
    onScrape: (fn) => scrapers.push(fn),
    async text() {
      for (const s of scrapers) await s();
      return registry.metrics();
    },
    contentType: registry.contentType,
  };
}
