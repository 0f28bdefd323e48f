import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfigFile } from '../config/load.js';
import { rootSchema } from '../app/config-schema.js';
import { createLogger, maskNumber } from '../log.js';
import { AmiPort } from '../asterisk/ami.js';
import { startService } from '../app/service.js';
import { querySmsHistory } from '../sms/history.js';
import { openStore } from '../store/sqlite.js';
import { readAsteriskEnv, REPO_ROOT, runSipp } from './local-pbx.js';
import { startDemoProvider } from './sms-provider.js';

/**
 * `call-actions demo`: the example config against the local test PBX (docker/asterisk/up.sh),
 * a stand-in of the seed 000 SMS provider, and one real SIP caller who waits in queue "support",
 * presses # and is texted. Prints what the provider received and how long it took from the
 * caller's # (Asterisk's DTMFEnd over AMI) to the provider's request.
 */
export async function runDemo(opts: { config?: string; caller?: string } = {}): Promise<number> {
  const pbx = readAsteriskEnv();
  const caller = opts.caller ?? '+819012345678';
  const provider = await startDemoProvider();
  const dir = mkdtempSync(join(tmpdir(), 'call-actions-demo-'));
  Object.assign(process.env, {
    ARI_URL: pbx.ariUrl,
    ARI_USER: pbx.ariUser,
    ARI_PASSWORD: pbx.ariPass,
    AMI_USER: pbx.amiUser,
    AMI_SECRET: pbx.amiPass,
    AOSSMS_URL: provider.endpoint,
    AOS_TOKEN: provider.credentials.token,
    AOS_CLIENT_ID: provider.credentials.clientId,
    AOS_SMS_CODE: provider.credentials.smsCode,
  });
  const file = opts.config ?? join(REPO_ROOT, 'examples/config.yaml');
  let loaded: ReturnType<typeof loadConfigFile<typeof rootSchema>>;
  try {
    loaded = loadConfigFile(file, rootSchema);
  } catch (e) {
    await provider.close();
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`${e.message}\n`);
    return 2;
  }
  const { value: config, secrets } = loaded;
  config.store = `sqlite:${join(dir, 'demo.db')}`;
  config.tts.cacheDir = join(dir, 'tts');
  const logFile = join(dir, 'service.log');
  const log = createLogger({ level: config.log.level, secrets, destination: (await import('pino')).default.destination({ dest: logFile, sync: true }) });

  const say = (s: string) => process.stdout.write(`demo: ${s}\n`);
  say(`config ${file}; service log ${logFile}`);
  const service = await startService(config, { log });
  const ami = new AmiPort({ host: pbx.amiHost, port: pbx.amiPort, user: pbx.amiUser, secret: pbx.amiPass, timeoutMs: 3000, log });
  let poundAt: number | undefined;
  ami.on('DTMFEnd', (ev) => {
    if (ev.digit === '#' && ev.direction === 'Received') poundAt ??= Date.now();
  });
  ami.start();
  try {
    await until(async () => (await service.health()).ok && ami.ready, 15_000, 'the service and AMI to be ready');
    say(`caller ${caller} dials 100, waits in queue "support" and presses # ...`);
    const call = await runSipp({ scenario: 'queue_pound_2833', service: '100', from: caller, fromName: 'Demo Caller', timeoutMs: 40_000 });
    await until(() => provider.requests.length > 0, 10_000, 'the SMS request');
    const req = provider.requests[0]!;
    say(`SMS provider stand-in received: POST ${req.path}`);
    for (const [k, v] of Object.entries(req.fields)) say(`    ${k} = ${k === 'token' ? '(the token)' : k === 'phoneNumber' ? maskNumber(v, 'info') : v}`);
    if (poundAt !== undefined) say(`latency from # (DTMFEnd) to the provider's request: ${req.at - poundAt} ms`);
    const store = openStore(config.store);
    const history = await querySmsHistory(store, {});
    await store.close();
    for (const e of history.entries) say(`SMS history: ${e.description} -> ${maskNumber(e.recipient ?? '', 'info')}: ${e.status} after ${e.attempts} attempt(s)`);
    say(call.code === 0 ? 'the caller heard the confirmation and the service hung up' : `sipp ended with code ${call.code}`);
    return call.code === 0 && history.entries[0]?.status === 'sent' ? 0 : 1;
  } finally {
    await ami.stop();
    await service.stop();
    await provider.close();
  }
}

async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
