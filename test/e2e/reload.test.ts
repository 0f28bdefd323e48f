import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AmiLog, type AmiEvent } from '../helpers/ami-log.js';
import { REPO_ROOT } from '../helpers/asterisk.js';
import { baseConfig, freePort, serviceDir, serviceEnv, startService, type RunningService } from '../helpers/service.js';
import { runSipp, type SippResult } from '../helpers/sipp.js';
import { startTwilio, type TwilioStandIn } from '../standins/twilio.js';

/**
 * A reload while five callers are in a stage (a ~6 s prompt, then the SMS step): they get the
 * old text, the callers after the reload the new one; a broken file on reload is refused (exit 2,
 * file:line:col) and the next caller still gets the last good text; ARI and AMI never reconnect.
 */
const run = promisify(execFile);
const CLI = join(REPO_ROOT, 'dist/cli.js');
const AGENT = '+48221131415';
const SAY = 'Please hold on for a few seconds while we get your text message ready, this takes a little while.';

let tw: TwilioStandIn;
let ami: AmiLog;
let service: RunningService;
let dir: string;
let port: number;

const config = (text: string, extra = '') =>
  baseConfig(
    dir,
    port,
    `sms:
  providers:
    twilio: { kind: twilio, accountSid: "\${TWILIO_SID}", authToken: "\${TWILIO_TOKEN}", from: "+15005550006", baseUrl: ${tw.url}, timeout: 3s }
stages:
  held:
    - say: "${SAY}"
    - sms: { description: Reload, provider: twilio, to: ["${AGENT}"], text: "${text} {caller}" }
${extra}`,
  );

async function reload(): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, 'reload', '--config', service.configFile], { env: serviceEnv({ TWILIO_SID: tw.accountSid, TWILIO_TOKEN: tw.authToken }) });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

let nextPort = 5700;
const callers = (n: number) => Array.from({ length: n }, () => `+1555${randomInt(1_000_000, 9_999_999)}`);
const place = (from: string): Promise<SippResult> =>
  runSipp({ scenario: 'call_until_bye', service: '130', from, fromName: 'Reload', localPort: (nextPort += 4), timeoutMs: 40_000 });
const back = (num: string) => (e: AmiEvent) => e.calleridnum === num && e.event === 'UserEvent' && e.userevent === 'CallActionsTestBack';
const textFor = (num: string) => tw.delivered.filter((m) => m.body.endsWith(num)).map((m) => m.body.slice(0, -num.length - 1));

beforeAll(async () => {
  tw = await startTwilio();
  ami = await AmiLog.open();
  dir = serviceDir();
  port = freePort();
  service = await startService({ dir, port, config: config('Old text for'), env: { TWILIO_SID: tw.accountSid, TWILIO_TOKEN: tw.authToken } });
});

afterAll(async () => {
  await service?.kill('SIGKILL');
  await ami?.close();
  await tw?.close();
});

describe('reload without restart', () => {
  it('callers in the stage keep the old text, the next callers get the new one; a broken file is refused and changes nothing', async () => {
    const first = callers(5);
    const firstCalls = first.map(place);
    const entered = () => service.lines.filter((l) => l.msg === 'stage entered' && l.stage === 'held').length;
    const deadline = Date.now() + 20_000;
    while (entered() < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(entered()).toBe(5);
    // all five are in the prompt: none has reached the SMS step
    expect(tw.delivered).toHaveLength(0);

    writeFileSync(service.configFile, config('New text for'));
    const applied = await reload();
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toContain('reloaded (1 stages: held)');
    expect(tw.delivered, 'the reload came before any SMS step ran').toHaveLength(0);

    const second = callers(2);
    const secondCalls = second.map(place);
    for (const r of await Promise.all([...firstCalls, ...secondCalls])) expect(r.code, r.stdout.slice(-1500) + r.stderr).toBe(0);
    await tw.waitForDelivered(7, 15_000);
    for (const num of first) expect(textFor(num)).toEqual(['Old text for']);
    for (const num of second) expect(textFor(num)).toEqual(['New text for']);

    // broken: refused with the place, and the next caller is served on the last good config
    writeFileSync(service.configFile, config('Broken text for', '    - shout: loud\n'));
    const refused = await reload();
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(new RegExp(`${service.configFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: stages\\.held\\[2\\]\\.shout: unknown step "shout"`));
    const [third] = callers(1);
    const r = await place(third!);
    expect(r.code, r.stdout.slice(-1500)).toBe(0);
    await tw.waitForDelivered(8, 15_000);
    expect(textFor(third!)).toEqual(['New text for']);

    for (const num of [...first, ...second, third!]) {
      expect((await ami.waitFor(back(num), 5_000, `CallActionsTestBack for ${num}`)).result).toBe('SUCCESS');
    }
    const lines = await service.settled();
    expect(lines.filter((l) => l.msg === 'ARI event stream connected')).toHaveLength(1);
    expect(lines.filter((l) => l.msg === 'AMI connected')).toHaveLength(1);
    expect(lines.some((l) => l.msg === 'ARI event stream lost' || l.msg === 'AMI connection lost')).toBe(false);
  }, 120_000);
});
