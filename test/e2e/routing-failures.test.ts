import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http, json, raw, slow, type Reply, type RouteApiStandIn } from '../standins/route-api.js';
import type { AmiEvent, AmiLog } from '../helpers/ami-log.js';
import { readAsteriskEnv } from '../helpers/asterisk.js';
import { garbageAnswers } from '../helpers/garbage-answers.js';
import { placeCall } from '../helpers/route-caller.js';
import type { RunningService } from '../helpers/service.js';
import { startRoutingPbx, type RoutingPbx } from '../helpers/routing.js';

/**
 * R7 on the real PBX: whatever the customer's API does — says error, fails with 500, answers
 * after 10 s with a 3 s timeout, or answers garbage — the SIP caller ends up in the fallback (the
 * queue "support"), hears the filler while waiting, and the service keeps running. Below the
 * service, the dialplan catches what the service cannot know (a queue Asterisk does not have) and
 * what it cannot do (not running at all).
 */

let api: RouteApiStandIn;
let service: RunningService;
let ami: AmiLog;
let pbx: RoutingPbx | undefined;
let n = 0;

beforeAll(async () => {
  ({ api, ami, service } = pbx = await startRoutingPbx(
    (api) => `stages:
  t530:
    - route:
        url: ${api.endpoint}
        timeout: 3s
        filler: { after: 1s, prompt: "Please hold while we look up your account." }
        fallback: { queue: support }
destinations:
  queue: { names: [support, ghost] }
`,
  ));
});
afterAll(() => pbx?.close());

interface Placed {
  caller: string;
  linkedId: string;
  callId: string;
  join: AmiEvent;
  entered: number;
}

/** A call to t530 that must end up waiting in queue "support". */
async function callToFallback(reply: Reply, holdMs = 2500): Promise<Placed> {
  const caller = `+48601555${String(++n).padStart(3, '0')}`;
  api.respond = () => reply;
  const placed = placeCall({ service: '530', from: caller, holdMs });
  const linkedId = await ami.linkedIdOf(caller);
  const join = await ami.waitFor((e) => e.linkedid === linkedId && e.event === 'QueueCallerJoin', 20_000, `QueueCallerJoin for ${caller}`).catch((e: Error) => {
    throw new Error(`${e.message}\n${JSON.stringify(service.lines.filter((l) => l.callId === linkedId))}\n${ami.ofCall(linkedId).map((x) => `${x.event} ${x.context ?? ''} ${x.exten ?? ''} ${x.application ?? ''}`).join('\n')}`);
  });
  const result = await placed;
  expect(result.code, result.stdout.slice(-800)).toBe(0);
  expect(join.queue).toBe('support');
  const entered = await service.waitForLog((l) => l.msg === 'stage entered' && l.callId === linkedId);
  return { caller, linkedId, callId: linkedId, join, entered: entered.time };
}

async function logOf(callId: string): Promise<Array<Record<string, unknown>>> {
  const res = await fetch(`${service.url}/routes/log?callId=${encodeURIComponent(callId)}`);
  return ((await res.json()) as { entries: Array<Record<string, unknown>> }).entries;
}

describe('a failing API never strands the caller', () => {
  it('status: error → the fallback queue, nothing spoken', async () => {
    const p = await callToFallback(json({ status: 'error', result: 'queue', redirect: 'vip', data: 'Internal error' }));
    expect(await logOf(p.callId)).toMatchObject([{ outcome: 'status-error', decision: 'fallback → queue:support', httpStatus: 200 }]);
    expect((await service.settled()).filter((l) => l.callId === p.callId && l.msg === 'prompt played')).toEqual([]);
  });

  it('HTTP 500 → the fallback queue', async () => {
    const p = await callToFallback(http(500, 'Internal Server Error'));
    expect(await logOf(p.callId)).toMatchObject([{ outcome: 'http-error', reason: 'http-500', httpStatus: 500, responseBody: 'Internal Server Error' }]);
  });

  it('an answer after 10 s with a 3 s timeout: the filler plays from 1 s, the caller is in the fallback queue at ~3 s', async () => {
    const p = await callToFallback(slow(10_000, json({ status: 'success', result: 'queue', redirect: 'ghost' })), 5500);
    const waited = Number(p.join.receivedAt) - p.entered;
    expect(waited).toBeGreaterThanOrEqual(3000);
    expect(waited).toBeLessThan(4500);
    const [entry] = await logOf(p.callId);
    expect(entry).toMatchObject({ outcome: 'timeout', filler: true, httpStatus: null, decision: 'fallback → queue:support' });
    expect(Number(entry!.latencyMs)).toBeGreaterThanOrEqual(2990);
    expect(Number(entry!.latencyMs)).toBeLessThan(3500);
    // the filler was played to this caller by Asterisk (its own log names the channel and the audio)
    const fillers = (await service.settled()).filter((l) => l.callId === p.callId && l.msg === 'filler played');
    expect(fillers.length).toBeGreaterThanOrEqual(1);
    expect(fillers[0]!.time - p.entered).toBeGreaterThanOrEqual(1000);
    const channel = ami.ofCall(p.linkedId).find((e) => e.event === 'Newchannel')!.channel!;
    const played = readFileSync(readAsteriskEnv().logFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes(`<${channel}> Playing 'http://127.0.0.1:`) && l.includes('/media/'));
    expect(played.length).toBeGreaterThanOrEqual(1);
  });

  it('a queue the service allows but Asterisk does not have: the dialplan takes the route\'s fallback (CA_DEST_FALLBACK)', async () => {
    const p = await callToFallback(json({ status: 'success', result: 'queue', redirect: 'ghost' }));
    expect(await logOf(p.callId)).toMatchObject([{ outcome: 'routed', decision: 'queue:ghost' }]);
    const events = ami.ofCall(p.linkedId);
    const failed = events.find((e) => e.event === 'UserEvent' && e.userevent === 'CallActionsFallback');
    expect(failed).toMatchObject({ stage: 'destination', dest: 'queue:ghost' });
    expect(events.findIndex((e) => e === failed)).toBeLessThan(events.findIndex((e) => e === p.join));
  });

  it('a sample of 30 generated malformed answers through real calls: the fallback every time, the service healthy', async () => {
    const corpus = garbageAnswers(1200);
    const step = Math.floor(corpus.length / 30);
    const sample = corpus.filter((_, i) => i % step === 0).slice(0, 30);
    for (const c of sample) {
      const p = await callToFallback(raw(c.body, c.contentType, c.status ?? 200), 1200);
      const [entry] = await logOf(p.callId);
      expect(entry!.outcome, c.name).not.toBe('routed');
      expect(entry!.decision).toBe('fallback → queue:support');
    }
    const health = await fetch(`${service.url}/health`);
    expect(health.status).toBe(200);
    expect(service.child.exitCode).toBeNull();
    expect((await service.settled()).filter((l) => l.level === 'error' || l.level === 'fatal')).toEqual([]);
    expect(service.stderr.join('')).toBe('');
  }, 240_000);

  it('the service not running: the dialplan falls through to its own fallback (STASISSTATUS=FAILED)', async () => {
    await service.kill('SIGTERM');
    const caller = '+48601555999';
    const placed = placeCall({ service: '530', from: caller, holdMs: 15_000 });
    const linkedId = await ami.linkedIdOf(caller);
    const fallback = await ami.waitFor((e) => e.linkedid === linkedId && e.event === 'UserEvent' && e.userevent === 'CallActionsFallback', 10_000, 'CallActionsFallback');
    expect(fallback.stage).toBe('t530');
    const result = await placed;
    expect(result.code).toBe(0);
    // the apology played, then the dialplan hung up
    expect(result.hungUpBy).toBe('pbx');
  });
});
