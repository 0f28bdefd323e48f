import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { AriPort } from '../../src/asterisk/ari.js';
import type { StasisStart } from '../../src/asterisk/ari-events.js';
import { CallMetrics } from '../../src/calls/metrics.js';
import { RESULT_VAR, StageRunner } from '../../src/calls/runner.js';
import { parseStageArgs } from '../../src/calls/session.js';
import type { StepServices } from '../../src/calls/services.js';
import { Step, type StepResult } from '../../src/calls/step.js';
import { fakeChannel, type FakeChannel } from '../helpers/fake-call.js';

/** A step that answers what it is told to, and counts its runs. */
class Scripted extends Step<{ result: StepResult | 'throw' }> {
  readonly kind = 'scripted';
  runs = 0;
  async run(): Promise<StepResult> {
    this.runs++;
    if (this.config.result === 'throw') throw new Error('step broke');
    return this.config.result;
  }
}

/** A caller entering stage "s". */
function stasisStart(channelId: string, callId: string): StasisStart {
  return {
    type: 'StasisStart',
    application: 'call-actions',
    timestamp: new Date().toISOString(),
    args: ['s', `callid=${callId}`],
    channel: { id: channelId, state: 'Up', caller: { number: '+819012345678', name: '' }, dialplan: { context: 'x', exten: 's', priority: 1, app_name: 'Stasis', app_data: 'call-actions,s' } },
  } as unknown as StasisStart;
}

async function visit(steps: Step[], channel = fakeChannel('chan-r')): Promise<{ channel: FakeChannel; metrics: CallMetrics }> {
  let onStart: (ev: StasisStart) => void = () => undefined;
  const ari = { onStasisStart: (fn: (ev: StasisStart) => void) => (onStart = fn), channel: () => channel } as unknown as AriPort;
  const metrics = new CallMetrics(new Set(['s']));
  const runner = new StageRunner({ ari, stages: new Map([['s', steps]]), services: {} as StepServices, log: pino({ level: 'silent' }), metrics });
  runner.start();
  const done = new Promise<void>((resolve) => channel.on('StasisEnd', () => setImmediate(resolve)));
  onStart(stasisStart('chan-r', 'c-1'));
  await done;
  return { channel, metrics };
}

describe('what a step returns decides where the call goes', () => {
  it("'fallback': the runner hands the call back with CALL_ACTIONS_RESULT=error, and later steps do not run", async () => {
    const later = new Scripted({ result: 'next' }, 'stages.s[1].scripted');
    const { channel, metrics } = await visit([new Scripted({ result: 'fallback' }, 'stages.s[0].scripted'), later]);
    expect(channel.ops).toEqual([{ op: 'setVar', name: RESULT_VAR, value: 'error' }, { op: 'continue', target: {} }]);
    expect(later.runs).toBe(0);
    expect(metrics.snapshot().s).toMatchObject({ fallback: 1 });
  });

  it("'next' to the end: back to the dialplan with no result variable", async () => {
    const { channel, metrics } = await visit([new Scripted({ result: 'next' }, 'a'), new Scripted({ result: 'next' }, 'b')]);
    expect(channel.ops).toEqual([{ op: 'continue', target: {} }]);
    expect(metrics.snapshot().s).toMatchObject({ left: 1 });
  });

  it('a step that throws is a fallback too', async () => {
    const { channel } = await visit([new Scripted({ result: 'throw' }, 'a')]);
    expect(channel.ops).toEqual([{ op: 'setVar', name: RESULT_VAR, value: 'error' }, { op: 'continue', target: {} }]);
  });
});

describe('a visit\'s time in the service, split by who was waited on', () => {
  /** A step that waits `ms` for an outside API, as the route step notes it. */
  class Asking extends Step<{ ms: number }> {
    readonly kind = 'asking';
    async run(session: Parameters<Step['run']>[0]): Promise<StepResult> {
      await new Promise((r) => setTimeout(r, this.config.ms));
      session.waited.apiMs += this.config.ms;
      return 'next';
    }
  }

  it('the API\'s wait, Asterisk\'s answer to the hand-back, and the rest as the service\'s own', async () => {
    const channel = fakeChannel('chan-r');
    const real = channel.continueInDialplan.bind(channel);
    channel.continueInDialplan = async (target) => {
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, 40));
      channel.restMs += performance.now() - t0;
      return real(target);
    };
    const { metrics } = await visit([new Asking({ ms: 60 }, 'a')], channel);
    const s = metrics.snapshot().s!;
    expect(s.api.sumMs).toBeCloseTo(60);
    // a timer may fire up to a millisecond early on performance.now()'s clock
    expect(s.asterisk.sumMs).toBeGreaterThanOrEqual(39);
    expect(s.inService.sumMs).toBeGreaterThanOrEqual(98);
    expect(s.own.sumMs).toBeCloseTo(s.inService.sumMs - s.api.sumMs - s.asterisk.sumMs, 0);
    expect(s.own.sumMs).toBeLessThan(s.inService.sumMs - 98);
  });
});

describe('a hand-back whose connection to Asterisk is lost', () => {
  /** The first continue's socket closes under it, as the ARI port reports it (undici's code); the channel stays in Stasis. */
  function droppingOnce(channel: FakeChannel, error: Error) {
    const real = channel.continueInDialplan.bind(channel);
    let dropped = false;
    channel.continueInDialplan = async (target) => {
      if (!dropped) {
        dropped = true;
        channel.ops.push({ op: 'continue', target: { dropped: true } as never });
        throw error;
      }
      return real(target);
    };
  }

  it('is tried again, so the caller reaches the dialplan instead of being hung up on', async () => {
    const channel = fakeChannel('chan-r');
    droppingOnce(channel, Object.assign(new Error('the ARI WebSocket closed before Asterisk answered'), { name: 'SocketError', code: 'UND_ERR_SOCKET' }));
    const { ops } = await visitWith(channel, [new Scripted({ result: 'fallback' }, 'a')]);
    expect(ops.map((o) => o.op)).toEqual(['setVar', 'continue', 'setVar', 'continue']);
    expect(ops).not.toContainEqual(expect.objectContaining({ op: 'hangup' }));
  });

  it('an answer that is not about the connection still ends in a hang-up, not a loop', async () => {
    const channel = fakeChannel('chan-r');
    droppingOnce(channel, Object.assign(new Error('Asterisk refused'), { name: 'AriError', status: 500 }));
    const { ops } = await visitWith(channel, [new Scripted({ result: 'fallback' }, 'a')]);
    expect(ops.map((o) => o.op)).toEqual(['setVar', 'continue', 'hangup']);
  });
});

async function visitWith(channel: FakeChannel, steps: Step[]): Promise<FakeChannel> {
  let onStart: (ev: StasisStart) => void = () => undefined;
  const ari = { onStasisStart: (fn: (ev: StasisStart) => void) => (onStart = fn), channel: () => channel } as unknown as AriPort;
  const runner = new StageRunner({ ari, stages: new Map([['s', steps]]), services: {} as StepServices, log: pino({ level: 'silent' }), metrics: new CallMetrics(new Set(['s'])) });
  runner.start();
  const done = new Promise<void>((resolve) => channel.on('StasisEnd', () => setImmediate(resolve)));
  onStart(stasisStart(channel.id, 'c-1'));
  await done;
  return channel;
}

/** A prompt that plays until the call's signal stops it, then fails as a cancelled playback does. */
class Prompt extends Step<Record<string, never>> {
  readonly kind = 'prompt';
  opsWhenStopped = -1;
  constructor(private readonly channel: FakeChannel) {
    super({}, 'stages.s[0].prompt');
  }
  async run(call: { signal: AbortSignal }): Promise<StepResult> {
    // as the ARI port's play() does: the playback is stopped from the abort listener itself
    await new Promise<void>((resolve) =>
      call.signal.addEventListener('abort', () => {
        this.opsWhenStopped = this.channel.ops.length;
        resolve();
      }, { once: true }),
    );
    throw new Error('playback cancelled');
  }
}

describe('a shutdown with a caller in a prompt', () => {
  it('stops the prompt first (Asterisk would carry out the hand-back only after it), then hands the call back once', async () => {
    const channel = fakeChannel('chan-p');
    let onStart: (ev: StasisStart) => void = () => undefined;
    const ari = { onStasisStart: (fn: (ev: StasisStart) => void) => (onStart = fn), channel: () => channel } as unknown as AriPort;
    const prompt = new Prompt(channel);
    const runner = new StageRunner({ ari, stages: new Map([['s', [prompt]]]), services: {} as StepServices, log: pino({ level: 'silent' }) });
    runner.start();
    onStart(stasisStart('chan-p', 'c-2'));
    await new Promise((r) => setImmediate(r));
    expect(runner.activeCalls).toBe(1);
    await runner.releaseAll();
    await new Promise((r) => setImmediate(r));
    expect(prompt.opsWhenStopped).toBe(0);
    // the step's own failure after the stop asks for the same hand-back, not a second one
    expect(channel.ops).toEqual([{ op: 'setVar', name: RESULT_VAR, value: 'error' }, { op: 'continue', target: {} }]);
    expect(runner.activeCalls).toBe(0);
  });
});

describe('stage arguments', () => {
  it('skips the empty slots the shipped [call-actions-stasis] Gosub passes, and numbers positional ones by their place', () => {
    expect(parseStageArgs(['queue=support', '', 'did=0120', '', 'x', ''])).toEqual({ queue: 'support', did: '0120', arg5: 'x' });
  });
});
