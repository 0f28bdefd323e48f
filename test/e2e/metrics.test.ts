import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseConfig, freePort, serviceDir, startService, type RunningService } from '../helpers/service.js';
import { runSipp } from '../helpers/sipp.js';
import { startTwilio, type TwilioStandIn } from '../standins/twilio.js';

/**
 * /metrics as Prometheus reads it: the text is parsed by a text-format parser, and the counters
 * move as one real SIP caller (sipp) goes through stage "notify" (an SMS to the Twilio stand-in,
 * then back to the dialplan).
 */

interface Family {
  name: string;
  type: string;
  metrics: Array<{ value?: string; labels?: Record<string, string>; count?: string }>;
}

let tw: TwilioStandIn;
let service: RunningService;

async function scrape(): Promise<Family[]> {
  const res = await fetch(`${service.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheusTextFormat(await res.text()) as Family[];
}

function value(families: Family[], name: string, labels: Record<string, string> = {}): number {
  const f = families.find((x) => x.name === name);
  if (!f) return Number.NaN;
  const m = f.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  return m ? Number(m.value ?? m.count) : 0;
}

describe.skipIf(process.env.CALL_ACTIONS_NO_ASTERISK === '1')('/metrics in the Prometheus text format', () => {
  beforeAll(async () => {
    tw = await startTwilio();
    const dir = serviceDir();
    const port = freePort();
    service = await startService({
      dir,
      port,
      env: { TWILIO_SID: tw.accountSid, TWILIO_TOKEN: tw.authToken },
      config: baseConfig(
        dir,
        port,
        `sms:
  providers:
    twilio: { kind: twilio, accountSid: "\${TWILIO_SID}", authToken: "\${TWILIO_TOKEN}", from: "+15005550006", baseUrl: ${tw.url}, timeout: 3s }
stages:
  notify:
    - sms: { description: "Agent", provider: twilio, to: ["+48221131415"], text: "Call from {caller}" }
    - continue: {}
`,
      ),
    });
  });
  afterAll(async () => {
    await service?.kill('SIGTERM');
    await tw?.close();
  });

  it('has the process metrics, the connections, and counters that move with a call', async () => {
    const before = await scrape();
    for (const name of ['process_cpu_user_seconds_total', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes', 'call_actions_sms_outbox_depth']) {
      expect(before.some((f) => f.name === name), name).toBe(true);
    }
    expect(value(before, 'call_actions_asterisk_connected', { connection: 'ari' })).toBe(1);
    expect(value(before, 'call_actions_asterisk_connected', { connection: 'ami' })).toBe(1);

    const delivered = tw.delivered.length;
    const r = await runSipp({ scenario: 'call_until_bye', service: '111', from: '+48601234567', fromName: 'Metrics Caller', timeoutMs: 30_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    await tw.waitForDelivered(delivered + 1, 10_000);
    // the outbox settles after the provider answers
    let after = await scrape();
    for (let i = 0; i < 50 && value(after, 'call_actions_sms_total', { provider: 'twilio', status: 'sent' }) < 1; i++) {
      await new Promise((res) => setTimeout(res, 100));
      after = await scrape();
    }
    const moved = (name: string, labels: Record<string, string>) => value(after, name, labels) - value(before, name, labels);
    expect(moved('call_actions_stage_calls_total', { stage: 'notify' })).toBe(1);
    expect(moved('call_actions_steps_total', { stage: 'notify', step: 'sms', result: 'next' })).toBe(1);
    expect(moved('call_actions_steps_total', { stage: 'notify', step: 'continue', result: 'handed-off' })).toBe(1);
    expect(moved('call_actions_stage_ends_total', { stage: 'notify', outcome: 'left' })).toBe(1);
    expect(moved('call_actions_sms_total', { provider: 'twilio', status: 'accepted' })).toBe(1);
    expect(moved('call_actions_sms_total', { provider: 'twilio', status: 'sent' })).toBe(1);
    expect(value(after, 'call_actions_active_calls', { stage: 'notify' })).toBe(0);
    expect(value(after, 'call_actions_sms_outbox_depth')).toBe(0);
  });
});
