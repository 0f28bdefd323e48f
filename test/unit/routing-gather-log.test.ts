import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { gatherSchema } from '../../src/routing/settings.js';
import { collectDigits, gather } from '../../src/routing/prompts.js';
import { createRouteLog, routeLogFilter, type NewRouteLogEntry } from '../../src/routing/history.js';
import { stepDefinitions } from '../../src/app/steps.js';
import type { StepServices } from '../../src/calls/services.js';
import { openStore } from '../../src/store/sqlite.js';
import { REPO_ROOT } from '../helpers/asterisk.js';
import { fakeCall } from '../helpers/fake-call.js';

const services: StepServices = {
  tts: { speak: async (text) => `sound:tts/${encodeURIComponent(text)}` },
  sms: { templates: {}, accept: async () => ({ duplicate: false, ids: [], blocked: [] }), hasOnce: async () => false, recordSkipped: async () => {} },
};
const later = (ms: number, fn: () => void) => setTimeout(fn, ms);

describe('collecting keys', () => {
  it('stops at the terminator, which is not part of the digits', async () => {
    const { session, channel } = fakeCall();
    later(20, () => channel.press('12#3'));
    expect(await collectDigits(session, { maxDigits: 10, terminator: '#', timeoutMs: 500, interDigitTimeoutMs: 300 })).toEqual({ digits: '12', ended: 'terminator' });
  });

  it('stops at maxDigits; a key during the prompt stops the prompt', async () => {
    const { session, channel } = fakeCall();
    channel.playMs = 5000;
    later(50, () => channel.press('4711'));
    const got = await collectDigits(session, { prompt: 'sound:x', maxDigits: 3, terminator: '#', timeoutMs: 500, interDigitTimeoutMs: 300 });
    expect(got).toEqual({ digits: '471', ended: 'max' });
    expect(channel.ops).toEqual([{ op: 'play', media: 'sound:x', outcome: 'cancelled' }]);
  });

  it('the first-key timeout runs from the end of the prompt, then the inter-digit timeout', async () => {
    const { session, channel } = fakeCall();
    channel.playMs = 300;
    const t0 = Date.now();
    later(400, () => channel.press('9'));
    const got = await collectDigits(session, { prompt: 'sound:x', maxDigits: 5, terminator: '#', timeoutMs: 200, interDigitTimeoutMs: 100 });
    expect(got).toEqual({ digits: '9', ended: 'timeout' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(490);
  });

  it('a hang-up ends it at once', async () => {
    const { session, channel } = fakeCall();
    later(30, () => channel.hangUp());
    expect(await collectDigits(session, { maxDigits: 5, terminator: '#', timeoutMs: 5000, interDigitTimeoutMs: 5000 })).toEqual({ digits: '', ended: 'hangup' });
  });
});

describe('the gather step', () => {
  it('prompts again after the invalid prompt while too few keys came, then keeps the digits', async () => {
    const { session, channel } = fakeCall();
    const cfg = gatherSchema.parse({ prompt: 'Enter your number', invalidPrompt: 'Sorry', minDigits: 4, maxDigits: 6, timeout: '150ms', interDigitTimeout: '100ms', retries: 2 });
    later(20, () => channel.press('12#'));
    later(100, () => channel.press('123456'));
    const step = stepDefinitions.gather!.create(cfg, 'stages.t[0].gather');
    expect(await step.run(session, services)).toBe('next');
    expect(session.vars.digits).toBe('123456');
    expect(channel.ops.map((o) => (o.op === 'play' ? o.media : o.op))).toEqual(['answer', 'sound:tts/Enter%20your%20number', 'sound:tts/Sorry', 'sound:tts/Enter%20your%20number']);
  });

  it('nothing typed after the retries: an empty value, and the stage goes on', async () => {
    const { session } = fakeCall();
    const cfg = gatherSchema.parse({ timeout: '50ms', retries: 1, var: 'customer' });
    const got = await gather(session, services, cfg);
    expect(got).toEqual({ digits: '', ended: 'timeout' });
  });
});

describe('the routing log', () => {
  const entry = (over: Partial<NewRouteLogEntry>): NewRouteLogEntry => ({
    time: Date.now(),
    callId: 'c1',
    channelId: 'ch',
    stage: 'welcome',
    step: 'stages.welcome[0].route',
    integration: null,
    caller: '+905321234567',
    method: 'POST',
    url: 'https://crm.example.com/route',
    encoding: 'json',
    requestBody: '{}',
    httpStatus: 200,
    responseBody: '{"status":"success"}',
    latencyMs: 12,
    outcome: 'routed',
    reason: 'queue vip',
    decision: 'queue:vip',
    filler: false,
    digits: null,
    ...over,
  });

  it('filters by call, caller, outcome and time; keeps a bounded excerpt of the bodies', async () => {
    const log = createRouteLog(openStore('sqlite::memory:'));
    await log.record(entry({ time: 1000 }));
    await log.record(entry({ time: 2000, callId: 'c2', outcome: 'timeout', decision: 'fallback → queue:support', responseBody: 'x'.repeat(10_000) }));
    await log.record(entry({ time: 3000, callId: 'c3', caller: '+48601555000', outcome: 'malformed' }));
    expect((await log.query({ callId: 'c2' })).entries.map((e) => e.outcome)).toEqual(['timeout']);
    expect((await log.query({ caller: '+48601555000' })).total).toBe(1);
    expect((await log.query({ outcome: ['timeout', 'malformed'] })).entries.map((e) => e.callId)).toEqual(['c2', 'c3']);
    expect((await log.query({ since: 1500, until: 2500 })).entries.map((e) => e.callId)).toEqual(['c2']);
    expect((await log.query({ callId: 'c2' })).entries[0]!.responseBody!.length).toBe(2049);
    expect(await log.query({ limit: 1 })).toMatchObject({ total: 3, entries: [{ callId: 'c3' }] });
  });

  it('refuses unknown parameters and outcomes instead of widening the query', () => {
    expect(() => routeLogFilter(new URLSearchParams('calId=x'))).toThrow(/unknown parameter "calId"/);
    expect(() => routeLogFilter(new URLSearchParams('outcome=slow'))).toThrow(/outcome: unknown slow/);
    expect(() => routeLogFilter(new URLSearchParams('since=yesterday'))).toThrow(RangeError);
    expect(routeLogFilter(new URLSearchParams('outcome=timeout,malformed&limit=5'))).toEqual({ outcome: ['timeout', 'malformed'], limit: 5 });
  });

  it('call-actions routes log reads the same store, with the same filters', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'routes-cli-'));
    const store = openStore(`sqlite:${join(dir, 'store.db')}`);
    const log = createRouteLog(store);
    await log.record(entry({ callId: 'call-a' }));
    await log.record(entry({ callId: 'call-b', outcome: 'timeout', decision: 'fallback → queue:support', httpStatus: null, responseBody: '(timeout) no complete answer' }));
    store.close();
    const cfg = join(dir, 'cfg.yaml');
    writeFileSync(cfg, `asterisk:\n  ari: { user: u, password: p }\nstore: sqlite:${join(dir, 'store.db')}\n`);
    const run = promisify(execFile);
    const cli = join(REPO_ROOT, 'dist/cli.js');
    const json = await run(process.execPath, [cli, 'routes', 'log', '--config', cfg, '--outcome', 'timeout', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ total: 1, entries: [{ callId: 'call-b', decision: 'fallback → queue:support' }] });
    const text = await run(process.execPath, [cli, 'routes', 'log', '--config', cfg]);
    expect(text.stdout).toMatch(/call-a\tstages\.welcome\[0\]\.route\trouted\tqueue:vip/);
    expect(text.stdout).toMatch(/2 of 2\n$/);
    await expect(run(process.execPath, [cli, 'routes', 'log', '--config', cfg, '--outcome', 'late'])).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('--outcome: unknown late') });
  });
});
