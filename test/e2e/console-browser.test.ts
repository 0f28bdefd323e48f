import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/asterisk.js';
import { startHookReceiver, type HookReceiver } from '../helpers/hook-receiver.js';
import { baseConfig, freePort, serviceDir, startService, type RunningService } from '../helpers/service.js';
import { runSipp } from '../helpers/sipp.js';
import twilio from 'twilio';
import { startTwilio, twilioError, type TwilioStandIn } from '../standins/twilio.js';

/**
 * The console in a real browser: Debian's Chromium (installed by docker/asterisk/up.sh when
 * missing; nothing downloads a browser) driven by playwright-core. A real SIP caller (sipp) is held
 * in stage "notify" while it speaks; their SMS fails at the Twilio stand-in and is re-sent from the
 * console; a hook run goes to the hook receiver. Screenshots of each page go to
 * test/.screenshots (the current ones are in docs/console/).
 */
const CHROMIUM = process.env.CALL_ACTIONS_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = join(REPO_ROOT, 'test/.screenshots');
const ADMIN = 'console-admin-token-0123456789';
const VIEWER = 'console-viewer-token-9876543210';
const CALLER = '+48601234567';

let tw: TwilioStandIn;
let rx: HookReceiver;
let service: RunningService;
let browser: Browser;

const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

async function signIn(token: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${service.url}/`);
  await page.locator('#token').fill(token);
  await page.locator('form#login button[type=submit]').click();
  await page.waitForSelector('#who');
  await page.waitForFunction("document.getElementById('who').textContent !== ''");
  return page;
}

describe.skipIf(process.env.CALL_ACTIONS_NO_ASTERISK === '1')('the console in Chromium', () => {
  beforeAll(async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM}: docker/asterisk/up.sh installs Debian's chromium`).toBe(true);
    mkdirSync(SHOTS, { recursive: true });
    tw = await startTwilio();
    rx = await startHookReceiver();
    rx.setDefault('/crm', { status: 200, body: '{"ticket":"T-1"}', headers: { 'content-type': 'application/json' } });
    const dir = serviceDir();
    const port = freePort();
    const config = baseConfig(
      dir,
      port,
      `console: { publicUrl: "http://127.0.0.1:${port}" }
sms:
  providers:
    twilio: { kind: twilio, accountSid: "\${TWILIO_SID}", authToken: "\${TWILIO_TOKEN}", from: "+15005550006", baseUrl: ${tw.url}, timeout: 3s, statusCallback: "http://127.0.0.1:${port}/sms/receipts/twilio" }
hooks:
  - name: crm
    on: stage.entered
    request: { url: "${rx.url}/crm", method: POST, body: { caller: "{caller}", event: "{event}" } }
stages:
  notify:
    - sms: { description: "Call back", provider: twilio, to: [caller], text: "We will call you back" }
    - say: { text: "Thank you for calling. Please hold while we look at your account. This message is long on purpose, so that the caller stays in the stage for a while, and the console can show the step and the time in it." }
    - continue: {}
`,
    ).replace(/^http: .*$/m, `http:\n  host: 127.0.0.1\n  port: ${port}\n  tokens:\n    - { name: ops, role: admin, token: "\${ADMIN_TOKEN}" }\n    - { name: desk, role: viewer, token: "\${VIEWER_TOKEN}" }`);
    service = await startService({ dir, port, config, env: { TWILIO_SID: tw.accountSid, TWILIO_TOKEN: tw.authToken, ADMIN_TOKEN: ADMIN, VIEWER_TOKEN: VIEWER } });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await service?.kill('SIGTERM');
    await tw?.close();
    await rx?.close();
  });

  it('no token: the API answers 401 and the console shows its login page', async () => {
    expect((await fetch(`${service.url}/sms/history`)).status).toBe(401);
    expect((await fetch(`${service.url}/live`)).status).toBe(401);
    const page = await browser.newPage();
    await page.goto(`${service.url}/logs/sms`);
    await page.waitForSelector('form#login');
    expect(await page.locator('#top').isHidden()).toBe(true);
    await shot(page, 'login');
    await page.locator('#token').fill('not-the-token-at-all');
    await page.locator('form#login button[type=submit]').click();
    await expect.poll(() => page.locator('#login-error').textContent()).toContain('not valid');
    await page.close();
  });

  let callId = '';
  let smsId = '';

  it('admin: a caller held in a stage appears on the live page within 1 s, and goes after the hang-up', async () => {
    const page = await signIn(ADMIN);
    await page.waitForSelector('#live-empty:not([hidden])');
    tw.enqueue(twilioError(400, 21211, "The 'To' number is not a valid phone number."));
    const call = runSipp({ scenario: 'call_hold_hangup', service: '111', from: CALLER, fromName: 'Console Caller', timeoutMs: 40_000 });
    const entered = await service.waitForLog((l) => l.msg === 'stage entered', 15_000);
    const seenAt = Date.now();
    const row = page.locator('tr.live-call');
    await row.first().waitFor({ timeout: 3_000 });
    const delay = Date.now() - seenAt;
    console.info(`console: the live row appeared ${delay} ms after the service logged "stage entered"`);
    // the log line arrives in batches of up to 100 ms after the event, so this is generous to the page
    expect(delay, `the live row appeared ${delay} ms after the service logged the stage`).toBeLessThan(1_000);
    callId = String(entered.callId);
    expect(await row.getAttribute('data-call-id')).toBe(callId);
    expect(await row.locator('.caller').textContent()).toBe(CALLER);
    await expect.poll(() => row.locator('td').nth(2).textContent(), { timeout: 10_000 }).toBe('say');
    await shot(page, 'live');
    const r = await call;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    await row.first().waitFor({ state: 'detached', timeout: 3_000 });
    expect(await page.locator('#live-empty').isVisible()).toBe(true);
    await page.close();
  }, 60_000);

  it("admin: the call page shows the call's SMS with its attempts and its hook run", async () => {
    await rx.waitFor('/crm', 1, 10_000);
    const page = await signIn(ADMIN);
    await page.goto(`${service.url}/calls/${encodeURIComponent(callId)}`);
    const sms = page.locator('div.sms');
    await expect.poll(async () => (await sms.count()) && (await sms.first().locator('.status-failed').count()), { timeout: 10_000 }).toBe(1);
    smsId = (await sms.first().getAttribute('data-sms-id'))!;
    expect(await sms.first().locator('.recipient').textContent()).toBe(CALLER);
    expect(await sms.first().locator('tr.attempt').count()).toBe(1);
    expect(await sms.first().locator('tr.attempt').textContent()).toContain('21211');
    const hook = page.locator('div.hook');
    expect(await hook.count()).toBe(1);
    expect(await hook.textContent()).toContain('crm');
    expect(await hook.locator('tr.attempt').textContent()).toContain(`${rx.url}/crm`);
    expect(await hook.locator('tr.attempt').textContent()).toContain('{"ticket":"T-1"}');
    expect(await hook.locator('.status-ok').count()).toBe(1);
    expect(await page.locator('text=stage entered').count()).toBeGreaterThan(0);
    await shot(page, 'call');
    await page.close();
  }, 30_000);

  it('admin: a failed SMS re-sent from the console reaches the provider once, in the same history', async () => {
    const page = await signIn(ADMIN);
    await page.goto(`${service.url}/calls/${encodeURIComponent(callId)}`);
    const before = tw.requests.length;
    const button = page.locator(`button.resend[data-id="${smsId}"]`);
    await button.click();
    await expect.poll(() => button.textContent()).toBe('Re-sent');
    const [sent] = await tw.waitForDelivered(1, 10_000);
    await new Promise((r) => setTimeout(r, 1500)); // and nothing more comes
    expect(tw.requests.length - before).toBe(1);
    // the page reloads itself: the same message, now sent after two attempts
    await expect.poll(() => page.locator(`div.sms[data-sms-id="${smsId}"] .status-sent`).count(), { timeout: 10_000 }).toBe(1);
    expect(await page.locator(`div.sms[data-sms-id="${smsId}"] tr.attempt`).count()).toBe(2);
    // Twilio's receipt (signed by the official package) shows on the page as the delivery status
    const callback = `${service.url}/sms/receipts/twilio`;
    const fields = { AccountSid: tw.accountSid, MessageSid: sent!.sid, MessageStatus: 'delivered', To: CALLER, From: '+15005550006', ApiVersion: '2010-04-01' };
    const receipt = await fetch(callback, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': twilio.getExpectedTwilioSignature(tw.authToken, callback, fields) },
      body: new URLSearchParams(fields).toString(),
    });
    expect(receipt.status).toBe(200);
    await page.reload();
    await expect.poll(() => page.locator(`div.sms[data-sms-id="${smsId}"] .delivery .status-delivered`).count(), { timeout: 10_000 }).toBe(1);
    const audit = (await (await fetch(`${service.url}/audit/log?action=/sms/resend`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { entries: Array<{ actor: string; target: string }> };
    expect(audit.entries.map((e) => [e.actor, e.target])).toEqual([['ops', smsId]]);
    await page.goto(`${service.url}/logs/sms`);
    await page.waitForSelector('table tr td');
    await shot(page, 'logs-sms');
    await page.goto(`${service.url}/flow`);
    await page.waitForSelector('.flow .step');
    expect(await page.locator('#flow').textContent()).not.toContain(tw.authToken);
    await shot(page, 'flow');
    await page.close();
  }, 40_000);

  it('viewer: numbers are masked, and there is no re-send', async () => {
    const page = await signIn(VIEWER);
    await page.goto(`${service.url}/calls/${encodeURIComponent(callId)}`);
    await page.waitForSelector('div.sms');
    expect(await page.locator('div.sms .recipient').first().textContent()).toBe('+4860*****67');
    expect(await page.locator('main').textContent()).not.toContain(CALLER);
    expect(await page.locator('button.resend').count()).toBe(0);
    await shot(page, 'call-viewer');
    await page.goto(`${service.url}/flow`);
    await expect.poll(() => page.locator('#flow').textContent()).toContain('admin token');
    await page.close();
  }, 30_000);
});
