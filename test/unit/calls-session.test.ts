import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LiveCalls } from '../../src/admin/live.js';
import type { AriPort } from '../../src/asterisk/ari.js';
import type { StasisStart } from '../../src/asterisk/ari-events.js';
import { StageRunner } from '../../src/calls/runner.js';
import { asteriskTime } from '../../src/calls/session.js';
import type { StepServices } from '../../src/calls/services.js';
import { Step, type StepResult } from '../../src/calls/step.js';
import type { CallSession } from '../../src/calls/session.js';
import { sendAndClassify, type Sent } from '../../src/http/send.js';
import { fakeCall, fakeChannel } from '../helpers/fake-call.js';

function stasisStart(channelId: string): StasisStart {
  return {
    type: 'StasisStart',
    application: 'call-actions',
    timestamp: new Date().toISOString(),
    args: ['s', 'callid=c-live'],
    channel: { id: channelId, state: 'Up', caller: { number: '+819012345678', name: '' }, dialplan: { context: 'x', exten: 's', priority: 1, app_name: 'Stasis', app_data: 'call-actions,s' } },
  } as unknown as StasisStart;
}

/** A step that goes on working after a hang-up until it is let go, as a step busy elsewhere does. */
class Busy extends Step<Record<string, never>> {
  readonly kind = 'busy';
  release: () => void = () => undefined;
  private began: () => void = () => undefined;
  readonly started = new Promise<void>((resolve) => (this.began = resolve));
  async run(): Promise<StepResult> {
    this.began();
    await new Promise<void>((resolve) => (this.release = resolve));
    return 'handed-off';
  }
}

describe("the call's end", () => {
  it('a hang-up takes the call off the live list at once, while its step is still running', async () => {
    const channel = fakeChannel('chan-live');
    let onStart: (ev: StasisStart) => void = () => undefined;
    const ari = { onStasisStart: (fn: (ev: StasisStart) => void) => (onStart = fn), channel: () => channel } as unknown as AriPort;
    const live = new LiveCalls();
    let changes = 0;
    live.on('change', () => changes++);
    const busy = new Busy({}, 'stages.s[0].busy');
    const runner = new StageRunner({ ari, stages: new Map([['s', [busy]]]), services: {} as StepServices, log: pino({ level: 'silent' }), observers: [live] });
    runner.start();
    onStart(stasisStart('chan-live'));
    await busy.started;
    expect(live.list().map((c) => c.callId)).toEqual(['c-live']);
    const before = changes;
    channel.hangUp();
    expect(live.list()).toEqual([]);
    expect(changes).toBe(before + 1);
    busy.release();
    await new Promise((r) => setImmediate(r));
    // the stage's own end after that tells nobody again
    expect(changes).toBe(before + 1);
    expect(runner.activeCalls).toBe(0);
  });

  it('tells each listener once, with the reason; an AbortSignal asked for before or after it is aborted too', () => {
    const { session, channel } = fakeCall();
    const early = session.signal;
    const heard: unknown[] = [];
    session.ending.addEventListener('abort', () => heard.push(session.ending.reason));
    const removed = () => heard.push('removed listener');
    session.ending.addEventListener('abort', removed);
    session.ending.removeEventListener('abort', removed);
    expect(session.active).toBe(true);
    channel.hangUp();
    session.end();
    expect(heard).toHaveLength(1);
    expect((heard[0] as DOMException).name).toBe('AbortError');
    expect(session.active).toBe(false);
    expect(session.inStasis).toBe(false);
    expect(early.aborted).toBe(true);
    expect(session.signal.aborted).toBe(true);
    expect(session.signal.reason).toBe(heard[0]);
  });

  it('an interrupted call is no longer active but still in Stasis', () => {
    const { session } = fakeCall();
    session.interrupt();
    expect(session.active).toBe(false);
    expect(session.inStasis).toBe(true);
    expect(session.signal.aborted).toBe(true);
  });

  describe('cancels a request sent for the call', () => {
    let server: Server;
    let url = '';
    beforeAll(async () => {
      // never answers
      server = createServer(() => undefined);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/route`;
    });
    afterAll(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });

    const send = (session: CallSession) => sendAndClassify({ method: 'GET', url, timeoutMs: 5000, signal: session.ending });

    it('when the caller hangs up while it waits for the answer', async () => {
      const { session, channel } = fakeCall();
      const t0 = performance.now();
      const sent: Promise<Sent> = send(session);
      setTimeout(() => channel.hangUp(), 50);
      const result = await sent;
      expect(result).toMatchObject({ kind: 'transport', error: { kind: 'aborted' } });
      expect(performance.now() - t0).toBeLessThan(2500);
    });

    it('at once when the call has already ended', async () => {
      const { session } = fakeCall();
      session.end();
      expect(await send(session)).toMatchObject({ kind: 'transport', error: { kind: 'aborted' } });
    });
  });
});

describe('asteriskTime', () => {
  it("reads ARI's offsets without a colon, and whatever Date.parse reads", () => {
    expect(asteriskTime('2026-11-21T03:52:58.123+0000')).toBe(Date.UTC(2026, 10, 21, 3, 52, 58, 123));
    expect(asteriskTime('2026-11-21T12:52:58.123+0900')).toBe(Date.UTC(2026, 10, 21, 3, 52, 58, 123));
    expect(asteriskTime('2026-11-20T22:52:58.123-0500')).toBe(Date.UTC(2026, 10, 21, 3, 52, 58, 123));
    expect(asteriskTime('2026-11-21T03:52:58.123Z')).toBe(Date.UTC(2026, 10, 21, 3, 52, 58, 123));
    expect(asteriskTime('2026-11-21T03:52:58.123+09:00')).toBe(Date.UTC(2026, 10, 20, 18, 52, 58, 123));
    expect(asteriskTime('not a time')).toBeUndefined();
    expect(asteriskTime('')).toBeUndefined();
    expect(asteriskTime(undefined)).toBeUndefined();
  });
});
