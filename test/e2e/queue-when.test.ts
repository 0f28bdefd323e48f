import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startHookReceiver, type HookReceiver } from '../helpers/hook-receiver.js';
import { aossmsEnv, startWithConfig, type RunningService } from '../helpers/service.js';
import { runSipp } from '../helpers/sipp.js';
import { startAossms, type AossmsStandIn } from '../standins/aossms.js';

/**
 * BIZTEL's `#` action per queue (issue 15): two queues of the real Asterisk ("support" at 100,
 * "sales" at 101) leave through the one shipped exit context into one `queue-exit` stage, whose
 * SMS steps are chosen by `when: { queue: … }`. The text carries the queue's wait and position as
 * Asterisk passed them (QUEUEWAIT, QUEUEPOSITION) and the caller's number in national form; the step
 * the condition skipped is in the log and reaches a hook as the `step.skipped` call event, with
 * the reason.
 */
const CALLER = '+819012345678';

let provider: AossmsStandIn;
let rx: HookReceiver;
let service: RunningService | undefined;

function sections(): string {
  return `sms:
  providers:
    aossms:
      kind: http
      url: ${provider.endpoint}
      encoding: form
      body: { token: "\${AOS_TOKEN}", clientId: "\${AOS_CLIENT_ID}", smsCode: "\${AOS_SMS_CODE}", message: "{message}", phoneNumber: "{to}" }
      timeout: 3s
  templates:
    sales: "SALES {queue}: waited {wait}s at position {position}, for {caller.national}"
    support: "SUPPORT {queue}: waited {wait}s at position {position}, for {caller.national}"
stages:
  queue-exit:
    - when: { queue: sales }
      sms: { description: sales, provider: aossms, to: [caller], template: sales }
    - when: { queue: [support, helpdesk] }
      sms: { description: support, provider: aossms, to: [caller], template: support }
    - say: "Sent."
    - hangup: {}
hooks:
  - name: skipped
    on: step.skipped
    request:
      url: ${rx.url}/skipped
      headers: { Content-Type: application/json }
      body: { callId: "{callId}", stage: "{stage}", step: "{skippedStep}", reason: "{skipReason}" }
`;
}

beforeAll(async () => {
  provider = await startAossms();
  rx = await startHookReceiver();
  rx.setDefault('/skipped', { status: 200, body: '{}' });
});
afterAll(async () => {
  await provider.close();
  await rx.close();
});
afterEach(async () => {
  await service?.kill('SIGTERM');
  service = undefined;
});

describe('one queue-exit stage, steps chosen per queue with when:', () => {
  for (const c of [
    { queue: 'sales', exten: '101', skipped: 1, reason: 'queue "sales" is not one of support, helpdesk' },
    { queue: 'support', exten: '100', skipped: 0, reason: 'queue "support" is not sales' },
  ]) {
    it(`a caller pressing # in ${c.queue} gets the ${c.queue} text with their wait and position; the other SMS step is skipped, with the reason`, async () => {
      const s = (service = await startWithConfig(sections(), { env: aossmsEnv(provider) }));
      const before = provider.requests.length;
      const hooksBefore = rx.to('/skipped').length;
      // the scenario waits 2.5 s in the queue after the answer, then presses #
      const call = await runSipp({ scenario: 'queue_pound_2833', service: c.exten, from: CALLER, fromName: 'Queue Caller', timeoutMs: 40_000 });
      expect(call.code, call.stderr + call.stdout).toBe(0);

      const sent = provider.requests.slice(before);
      expect(sent).toHaveLength(1);
      const message = sent[0]!.fields.message ?? '';
      const m = new RegExp(`^${c.queue.toUpperCase()} ${c.queue}: waited (\\d+)s at position (\\d+), for 09012345678$`).exec(message);
      expect(m, message).not.toBeNull();
      // Asterisk's QUEUEWAIT counts whole seconds from the join: 2.5 s of sipp's pause, plus the
      // time to set the call up and to carry the key (generous on a loaded machine)
      expect(Number(m![1])).toBeGreaterThanOrEqual(2);
      expect(Number(m![1])).toBeLessThanOrEqual(10);
      // alone in the queue
      expect(m![2]).toBe('1');

      const entered = (await s.settled()).find((l) => l.msg === 'stage entered')!;
      const skipped = (await s.settled()).filter((l) => l.msg === 'step skipped: its condition does not hold');
      expect(skipped).toHaveLength(1);
      const step = `stages.queue-exit[${c.skipped}].sms`;
      expect(skipped[0]).toMatchObject({ callId: entered.callId, step, kind: 'sms', reason: c.reason });

      const [hook] = (await rx.waitFor('/skipped', hooksBefore + 1)).slice(hooksBefore);
      expect(hook!.parsed).toEqual({ kind: 'json', value: { callId: entered.callId, stage: 'queue-exit', step, reason: c.reason } });

      const history = (await (await fetch(`${s.url}/sms/history`)).json()) as { total: number; entries: Array<Record<string, unknown>> };
      expect(history.total).toBe(1);
      expect(history.entries[0]).toMatchObject({ status: 'sent', recipient: CALLER, callId: entered.callId, description: c.queue, text: message });
    });
  }
});
