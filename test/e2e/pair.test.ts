import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AmiLog, type AmiEvent } from '../helpers/ami-log.js';
import { aossmsEnv, baseConfig, freePort, serviceDir, startService, type RunningService } from '../helpers/service.js';
import { runSipp, type SippResult } from '../helpers/sipp.js';
import { startAossms, type AossmsStandIn } from '../standins/aossms.js';

/**
 * Two instances on one store (docs/pair.md): A (call-actions-a) and B (call-actions-b), offered in
 * that order by the shipped [call-actions-stasis] Gosub (test PBX exten 140). A is SIGKILLed with
 * callers in its stage and SMS accepted but not yet due: new callers reach B at once; B takes A's
 * callers back from Asterisk once A has been silent for pair.deadAfter, and delivers A's SMS.
 * Every caller ends normally and every SMS reaches the provider once.
 */
const SAY = 'Thank you for calling. This message plays for a few seconds.';

let sms: AossmsStandIn;
let ami: AmiLog;
let a: RunningService;
let b: RunningService;
const dir = serviceDir();

function config(app: string, peer: string, port: number): string {
  return baseConfig(
    dir,
    port,
    `pair: { peers: [${peer}], heartbeat: 500ms, deadAfter: 2s }
sms:
  providers:
    aossms:
      kind: http
      url: ${sms.endpoint}
      body: { token: "\${AOS_TOKEN}", clientId: "\${AOS_CLIENT_ID}", smsCode: "\${AOS_SMS_CODE}", message: "{message}", phoneNumber: "{to}" }
      timeout: 2s
stages:
  pair:
    - sms: { description: pair, provider: aossms, to: [caller], text: "pair {callId}", oncePerCall: true, delay: 4s }
    - say: "${SAY}"
`,
  ).replace('app: call-actions,', `app: ${app},`);
}

async function start(app: string, peer: string): Promise<RunningService> {
  const port = freePort();
  // both in one folder: one store; B's own TTS cache would do as well
  return startService({ dir, port, config: config(app, peer, port), env: aossmsEnv(sms) });
}

beforeAll(async () => {
  sms = await startAossms();
  ami = await AmiLog.open();
  a = await start('call-actions-a', 'call-actions-b');
  b = await start('call-actions-b', 'call-actions-a');
});

afterAll(async () => {
  await a?.kill('SIGKILL');
  await b?.kill('SIGKILL');
  await sms?.close();
  await ami?.close();
});

const caller = () => `+8190${randomInt(10_000_000, 99_999_999)}`;
const back = (num: string) => (e: AmiEvent) => e.calleridnum === num && e.event === 'UserEvent' && e.userevent === 'CallActionsTestBack';

describe('two instances on one store', () => {
  it('A killed mid-stage: new calls reach B at once, B takes A’s callers back and sends A’s SMS, nobody is lost', async () => {
    const first = Array.from({ length: 4 }, caller);
    const calls: Array<Promise<SippResult>> = first.map((from, i) =>
      runSipp({ scenario: 'call_until_bye', service: '140', from, fromName: `Pair ${i}`, localPort: 5700 + i * 4, timeoutMs: 60_000 }),
    );
    const inA = () => a.lines.filter((l) => l.msg === 'stage entered' && l.stage === 'pair').length;
    const deadline = Date.now() + 20_000;
    while (inA() < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(inA(), 'the first instance in CALL_ACTIONS_APPS takes the calls').toBe(4);
    expect(b.lines.some((l) => l.msg === 'stage entered')).toBe(false);
    const accepted = () => a.lines.filter((l) => l.msg === 'SMS accepted').length;
    while (accepted() < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(accepted(), 'A accepted an SMS for each caller, due after A is gone').toBe(4);
    expect(sms.requests).toHaveLength(0);

    const killedAt = Date.now();
    await a.kill('SIGKILL');

    // a caller arriving now: Stasis(call-actions-a) fails at once, B takes the call
    const late = caller();
    calls.push(runSipp({ scenario: 'call_until_bye', service: '140', from: late, fromName: 'Pair late', localPort: 5740, timeoutMs: 60_000 }));
    const lateBack = await ami.waitFor(back(late), 20_000, `CallActionsTestBack for ${late}`).catch((e: Error) => {
      throw new Error(`${e.message}; B said: ${JSON.stringify(b.lines.slice(-15))} ${b.stderr.join('')}`);
    });
    expect(lateBack).toMatchObject({ result: 'SUCCESS', error: '' });

    // A's callers: handed back by B after deadAfter, then served by B
    await b.waitForLog((l) => l.msg === 'pair: peer lost; taking over its work', 10_000);
    for (const num of first) {
      const ev = await ami.waitFor(back(num), 30_000, `CallActionsTestBack for ${num}`);
      expect(ev, `caller ${num}`).toMatchObject({ result: 'SUCCESS', error: '' });
    }
    const results = await Promise.all(calls);
    for (const [i, r] of results.entries()) expect(r.code, `caller ${i}: ${r.stdout.slice(-1500)}\n${r.stderr}`).toBe(0);
    const lines = await b.settled();
    const handedBack = lines.filter((l) => l.msg === 'pair: a caller the lost peer left in Stasis was handed back to the dialplan');
    expect(handedBack.length).toBe(4);
    expect(lines.filter((l) => l.msg === 'stage entered' && l.stage === 'pair').length).toBe(5);

    // every SMS once: A accepted 4 (due 4 s after the step), B the late caller's; B delivers all
    const deliveredBy = Date.now() + 15_000;
    while (sms.delivered.length < 5 && Date.now() < deliveredBy) await new Promise((r) => setTimeout(r, 200));
    await new Promise((r) => setTimeout(r, 1_000));
    const texts = sms.delivered.map((d) => d.message).sort();
    expect(texts).toHaveLength(5);
    expect(new Set(texts).size).toBe(5);
    expect(Date.now() - killedAt).toBeLessThan(45_000);

    const health = (await (await fetch(`${b.url}/health`)).json()) as { pair: { peers: Record<string, { alive: boolean }> } };
    expect(health.pair.peers['call-actions-a']).toMatchObject({ alive: false, stopped: false });
  }, 120_000);
});
