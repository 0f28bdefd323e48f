import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { rootSchema } from '../../src/app/config-schema.js';
import { createStep } from '../../src/app/steps.js';
import type { AriPort } from '../../src/asterisk/ari.js';
import type { StasisStart } from '../../src/asterisk/ari-events.js';
import { CallEventTracker } from '../../src/asterisk/call-events.js';
import type { CallEvent } from '../../src/asterisk/call-event-types.js';
import { stepConditionHolds, stepConditionSchema } from '../../src/calls/condition.js';
import { StageRunner, type SkippedStep } from '../../src/calls/runner.js';
import type { StepServices } from '../../src/calls/services.js';
import { Step, type StepResult, type StepSpec } from '../../src/calls/step.js';
import { ConfigError, parseConfigText } from '../../src/config/load.js';
import { fakeChannel } from '../helpers/fake-call.js';

const ENV = { ARI_USER: 'u', ARI_PASSWORD: 'p' };
const config = (stages: string) => `asterisk:
  ari: { user: "\${ARI_USER}", password: "\${ARI_PASSWORD}" }
sms:
  defaultCountry: JP
stages:
${stages}`;

function issuesOf(text: string): Array<{ message: string; line?: number; path: string }> {
  try {
    parseConfigText(text, 'cfg.yaml', rootSchema, ENV);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues as never;
    throw e;
  }
  throw new Error('config was accepted');
}

const holds = (when: unknown, vars: Record<string, string>) => stepConditionHolds(stepConditionSchema.parse(when), vars, 'JP');

describe('when: on a step (calls/condition.ts)', () => {
  it('queue: one name or a list; the reason names the value and what was wanted', () => {
    expect(holds({ queue: 'sales' }, { queue: 'sales' })).toEqual({ ok: true });
    expect(holds({ queue: ['sales', 'vip'] }, { queue: 'vip' })).toEqual({ ok: true });
    expect(holds({ queue: ['sales', 'vip'] }, { queue: 'support' })).toEqual({ ok: false, reason: 'queue "support" is not one of sales, vip' });
    expect(holds({ queue: 'sales' }, {})).toEqual({ ok: false, reason: 'queue "" is not sales' });
  });

  it('did: the same number in E.164 or national form matches; /patterns/ too; {called} when no did= was passed', () => {
    expect(holds({ did: ['+81 50-1234-5678'] }, { did: '0501234567' })).toEqual({ ok: false, reason: 'did "0501234567" is not +81 50-1234-5678' });
    expect(holds({ did: ['+81 50-1234-5678'] }, { did: '05012345678' })).toEqual({ ok: true });
    expect(holds({ did: '/^\\+8150/' }, { called: '+815012345678' })).toEqual({ ok: true });
    expect(holds({ did: 100 }, { did: '100' })).toEqual({ ok: true });
  });

  it('caller: compared like did, and the reason keeps the number out of the log', () => {
    expect(holds({ caller: '09012345678' }, { caller: '+819012345678' })).toEqual({ ok: true });
    const r = holds({ caller: '/^\\+8180/' }, { caller: '+819012345678' });
    expect(r).toEqual({ ok: false, reason: 'caller is not /^\\+8180/' });
  });

  it("value and match are the hooks' condition; everything given must hold", () => {
    expect(holds({ value: '{position}', match: '/^[1-3]$/' }, { position: '2' })).toEqual({ ok: true });
    expect(holds({ value: '{position}', match: '/^[1-3]$/' }, { position: '7' })).toEqual({ ok: false, reason: '"{position}" is "7", which does not match /^[1-3]$/' });
    expect(holds({ queue: 'sales', value: '{wait}', match: '/^[0-9]$/' }, { queue: 'sales', wait: '12' }).ok).toBe(false);
    expect(holds({ queue: 'vip', value: '{wait}', match: '/^[0-9]$/' }, { queue: 'sales', wait: '1' })).toMatchObject({ reason: expect.stringMatching(/^queue/) });
  });
});

describe('when: in the config', () => {
  it('sits beside the step kind on any step, and is built into the step', () => {
    const { value } = parseConfigText(
      config(`  queue-exit:
    - say: "For sales"
      when: { queue: [sales, vip] }
    - hangup: {}
      when: { value: "{queue}", match: "/^support$/" }
    - continue: {}
`),
      'cfg.yaml',
      rootSchema,
      ENV,
    );
    const specs = value.stages['queue-exit'] as StepSpec[];
    expect(specs.map((s) => [s.kind, s.where, s.when ? Object.keys(s.when).filter((k) => (s.when as never)[k] !== undefined) : null])).toEqual([
      ['say', 'stages.queue-exit[0].say', ['queue']],
      ['hangup', 'stages.queue-exit[1].hangup', ['value', 'match']],
      ['continue', 'stages.queue-exit[2].continue', null],
    ]);
    const step = createStep(specs[0]!);
    expect(step.when).toBe(specs[0]!.when);
    expect(createStep(specs[2]!).when).toBeUndefined();
  });

  it('a bad condition is an error at its line: unknown key, value without match, an invalid pattern, an empty one', () => {
    const text = config(`  queue-exit:
    - say: "a"
      when: { queues: [sales] }
    - say: "b"
      when: { value: "{queue}" }
    - say: "c"
      when: { did: "/(/" }
    - say: "d"
      when: {}
`);
    const issues = issuesOf(text);
    const lines = text.split('\n');
    const at = (needle: string) => lines.findIndex((l) => l.includes(needle)) + 1;
    expect(issues.map((i) => [i.line, i.message])).toEqual([
      [at('queues'), expect.stringMatching(/queues/)],
      [at('queues'), expect.stringMatching(/needs value and match, or one of queue, did, caller/)],
      [at('when: { value'), expect.stringMatching(/value and match go together/)],
      [at('"/(/"'), expect.stringMatching(/invalid regular expression/)],
      [at('when: {}'), expect.stringMatching(/needs value and match, or one of queue, did, caller/)],
    ]);
  });

  it('two step kinds in one item are still refused, when or not', () => {
    const issues = issuesOf(config(`  s:
    - say: "a"
      hangup: {}
      when: { queue: sales }
`));
    expect(issues[0]!.message).toMatch(/a step is one of/);
  });
});

class Counting extends Step<null> {
  readonly kind = 'counting';
  runs = 0;
  async run(): Promise<StepResult> {
    this.runs++;
    return 'next';
  }
}

describe('the runner skips a step whose condition does not hold', () => {
  it('runs the matching step, skips the other, tells the log and the call events why', async () => {
    const channel = fakeChannel('chan-w');
    let onStart: (ev: StasisStart) => void = () => undefined;
    const ari = { onStasisStart: (fn: (ev: StasisStart) => void) => (onStart = fn), channel: () => channel } as unknown as AriPort;
    const sales = new Counting(null, 'stages.s[0].counting');
    sales.when = stepConditionSchema.parse({ queue: 'sales' });
    const vip = new Counting(null, 'stages.s[1].counting');
    vip.when = stepConditionSchema.parse({ queue: 'vip' });
    const lines: Array<Record<string, unknown>> = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const tracker = new CallEventTracker();
    const events: CallEvent[] = [];
    tracker.on('event', (e) => events.push(e));
    const skipped: SkippedStep[] = [];
    const runner = new StageRunner({
      ari,
      stages: new Map([['s', [sales, vip]]]),
      services: {} as StepServices,
      log,
      onStageEntered: (session, ev) => tracker.stageEntered({ callId: session.callId, channelId: ev.channel.id, stage: session.stage, vars: session.vars }),
      onStepSkipped: (session, s) => {
        skipped.push(s);
        tracker.stepSkipped({ callId: session.callId, channelId: 'chan-w', stage: session.stage, step: s.step, reason: s.reason });
      },
    });
    runner.start();
    const done = new Promise<void>((resolve) => channel.on('StasisEnd', () => setImmediate(resolve)));
    onStart({
      type: 'StasisStart',
      application: 'call-actions',
      timestamp: new Date().toISOString(),
      args: ['s', 'callid=c-9', 'queue=sales'],
      channel: { id: 'chan-w', state: 'Up', caller: { number: '+819012345678', name: '' }, dialplan: { context: 'x', exten: '#', priority: 1, app_name: 'Stasis', app_data: '' } },
    } as unknown as StasisStart);
    await done;
    expect([sales.runs, vip.runs]).toEqual([1, 0]);
    const reason = 'queue "sales" is not vip';
    expect(skipped).toEqual([{ step: 'stages.s[1].counting', kind: 'counting', reason }]);
    const line = lines.find((l) => l.msg === 'step skipped: its condition does not hold');
    expect(line).toMatchObject({ callId: 'c-9', step: 'stages.s[1].counting', reason });
    const ev = events.find((e) => e.kind === 'step.skipped');
    expect(ev?.vars).toMatchObject({ callId: 'c-9', stage: 's', skippedStep: 'stages.s[1].counting', skipReason: reason, event: 'step.skipped' });
    expect(channel.ops).toEqual([{ op: 'continue', target: {} }]);
  });
});
