import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAossms, type AossmsStandIn } from '../standins/aossms.js';
import { startAsterisk, stopAsterisk } from '../helpers/asterisk.js';
import { aossmsEnv, startWithConfig, waitHealthy, type RunningService } from '../helpers/service.js';
import { runSipp } from '../helpers/sipp.js';

/**
 * ari-client, which the port used to be built on, stopped reconnecting after about 43 s
 * (node-ari-client #14/#15). An Asterisk that is down for longer must still find the service again,
 * with no manual step, and the service says meanwhile why it is not ready.
 */
let provider: AossmsStandIn;
let service: RunningService;

beforeAll(async () => {
  provider = await startAossms();
  service = await startWithConfig(
    `sms:
  providers:
    aossms:
      kind: http
      url: ${provider.endpoint}
      body: { token: "\${AOS_TOKEN}", clientId: "\${AOS_CLIENT_ID}", smsCode: "\${AOS_SMS_CODE}", message: "{message}", phoneNumber: "{to}" }
stages:
  queue-exit:
    - sms: { description: "Queue # SMS", provider: aossms, text: "Call-back link: https://example.com/cb" }
    - hangup: {}
`,
    { env: aossmsEnv(provider) },
  );
});

afterAll(async () => {
  await service?.kill('SIGTERM');
  await provider?.close();
  await startAsterisk();
});

describe('Asterisk down for longer than ari-client kept trying', () => {
  it('the port keeps reconnecting and the next call works', async () => {
    await stopAsterisk();
    const downAt = Date.now();
    await new Promise((r) => setTimeout(r, 50_000));
    expect(service.child.exitCode, service.stderr.join('')).toBeNull();
    const res = await fetch(`${service.url}/health`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { ari: { reason: string } }).ari.reason).toMatch(/ECONNREFUSED/);
    // still trying at the end of the outage, not only at its start
    const lines = await service.settled();
    expect(lines.some((l) => l.msg === 'ARI connect failed' && l.time > downAt + 40_000)).toBe(true);
    await startAsterisk();
    await waitHealthy(service.url, 30_000).catch((e: Error) => {
      throw new Error(`${e.message}; exit ${service.child.exitCode} ${service.child.signalCode}; stderr: ${service.stderr.join('')}; last lines: ${service.lines.slice(-10).map((l) => JSON.stringify(l)).join('\n')}`);
    });
    const before = provider.requests.length;
    const call = await runSipp({ scenario: 'queue_pound_2833', service: '100', from: '+819012345678', fromName: 'After Outage', timeoutMs: 40_000 });
    expect(call.code, call.stdout).toBe(0);
    // the stage hangs up right after accepting the SMS, so the request may trail the BYE a little
    await provider.waitForRequests(before + 1, 10_000);
    expect(provider.requests.length - before).toBe(1);
  }, 150_000);
});
