import twilio from 'twilio';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startHookReceiver, type HookReceiver } from '../helpers/hook-receiver.js';
import { freePort, startWithConfig, type RunningService } from '../helpers/service.js';
import { runSipp } from '../helpers/sipp.js';
import { startTwilio, type TwilioStandIn } from '../standins/twilio.js';

/**
 * "Did it arrive?" end to end: a real SIP caller presses # in the real Asterisk's queue, the
 * service texts them through the Twilio stand-in with a StatusCallback, and Twilio's status
 * callback, signed by Twilio's own helper library (the `twilio` package), moves the SMS to
 * delivered in the history and fires the `sms.delivered` call event, which a hook acts on. A
 * forged callback gets 403 and changes nothing.
 */
const CALLER = '+819012345678';

let tw: TwilioStandIn;
let rx: HookReceiver;
let service: RunningService | undefined;

beforeAll(async () => {
  tw = await startTwilio();
  rx = await startHookReceiver();
  rx.setDefault('/delivered', { status: 200, body: '{}' });
});
afterAll(async () => {
  await tw.close();
  await rx.close();
});
afterEach(async () => {
  await service?.kill('SIGTERM');
  service = undefined;
});

describe('SMS delivery receipts', () => {
  it('a signed Twilio receipt moves the queue caller\'s SMS to delivered and a hook hears of it; a forged one is refused', async () => {
    const port = freePort();
    const callback = `http://127.0.0.1:${port}/sms/receipts/tw`;
    const s = (service = await startWithConfig(
      `sms:
  providers:
    tw: { kind: twilio, accountSid: ${tw.accountSid}, authToken: "\${TWILIO_TOKEN}", from: "+15005550006", baseUrl: ${tw.url}, statusCallback: ${callback} }
stages:
  queue-exit:
    - sms: { description: "Queue # SMS", provider: tw, to: [caller], text: "Book a call-back" }
    - hangup: {}
hooks:
  - on: sms.delivered
    request:
      url: ${rx.url}/delivered
      headers: { Content-Type: application/json }
      body: { callId: "{callId}", to: "{smsTo}", status: "{smsStatus}", step: "{smsDescription}" }
`,
      { port, env: { TWILIO_TOKEN: tw.authToken } },
    ));
    const before = tw.delivered.length;
    const call = await runSipp({ scenario: 'queue_pound_2833', service: '100', from: CALLER, fromName: 'Queue Caller', timeoutMs: 40_000 });
    expect(call.code, call.stderr + call.stdout).toBe(0);
    const [msg] = (await tw.waitForDelivered(before + 1, 10_000)).slice(before);
    expect(msg!.request.fields.StatusCallback).toBe(callback);
    const entered = (await s.settled()).find((l) => l.msg === 'stage entered')!;

    const fields = { AccountSid: tw.accountSid, MessageSid: msg!.sid, MessageStatus: 'delivered', To: CALLER, From: '+15005550006', ApiVersion: '2010-04-01' };
    const post = (f: Record<string, string>, signature: string) =>
      fetch(callback, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': signature }, body: new URLSearchParams(f).toString() });
    const history = async () => ((await (await fetch(`${s.url}/sms/history?callId=${encodeURIComponent(String(entered.callId))}`)).json()) as { entries: Array<Record<string, any>> }).entries;

    // signed with another token: refused, nothing recorded
    expect((await post(fields, twilio.getExpectedTwilioSignature('0'.repeat(32), callback, fields))).status).toBe(403);
    expect((await history())[0]).toMatchObject({ status: 'sent', providerMessageId: msg!.sid, delivery: null, receipts: [] });

    expect((await post(fields, twilio.getExpectedTwilioSignature(tw.authToken, callback, fields))).status).toBe(200);
    const [entry] = await history();
    expect(entry).toMatchObject({ delivery: { status: 'delivered', errorCode: null }, receipts: [{ status: 'delivered', providerStatus: 'delivered' }] });

    const [hook] = await rx.waitFor('/delivered', 1, 10_000);
    expect(hook!.parsed).toEqual({ kind: 'json', value: { callId: entered.callId, to: CALLER, status: 'delivered', step: 'Queue # SMS' } });
    // the number stays masked in the log, the token out of it
    const text = JSON.stringify(await s.settled());
    expect(text).not.toContain(CALLER);
    expect(text).not.toContain(tw.authToken);
  });
});
