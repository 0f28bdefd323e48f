import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rootSchema } from '../../src/app/config-schema.js';
import { startService, type Service } from '../../src/app/service.js';
import type { CallEvent } from '../../src/asterisk/call-event-types.js';
import { parseConfigText } from '../../src/config/load.js';
import { HookWorker } from '../../src/hooks/worker.js';
import { createHttpProvider, httpProviderSchema } from '../../src/sms/http-provider.js';
import { Outbox } from '../../src/sms/outbox.js';
import { openStore, type Store } from '../../src/store/sqlite.js';
import { storeWrites } from '../../src/store/write-health.js';
import { startHookReceiver, type HookReceiver } from '../helpers/hook-receiver.js';
import { DEFAULT_CREDENTIALS, startAossms, type AossmsStandIn } from '../standins/aossms.js';

/**
 * A full disk under the store: the SMS outbox and the hook worker keep what they accepted, say
 * so in /health, and deliver every accepted item once space returns. The disk is a real 4 MiB
 * tmpfs mounted for the test (root only, as CI runs); "full" is a file that takes the rest of it.
 */

const root = process.getuid?.() === 0;
const quiet = pino({ level: 'silent' });

let mnt: string;
let mounted = false;
const cleanups: Array<() => unknown> = [];

beforeEach(() => {
  if (!root) return;
  mnt = mkdtempSync(join(tmpdir(), 'ca-fulldisk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt]);
  mounted = true;
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  if (mounted) execFileSync('umount', ['-l', mnt]);
  mounted = false;
  if (mnt) rmSync(mnt, { recursive: true, force: true });
});

function fillDisk(): void {
  try {
    execFileSync('dd', ['if=/dev/zero', `of=${join(mnt, 'filler')}`, 'bs=4k'], { stdio: 'ignore' });
  } catch {
    /* dd ends with "No space left on device": that is the point */
  }
}
const freeDisk = () => rmSync(join(mnt, 'filler'), { force: true });

async function until<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let seq = 0;
function event(): CallEvent {
  const callId = `call-${++seq}`;
  return { kind: 'call.end', callId, key: `${callId}/call.end`, at: Date.now(), vars: { callId, caller: '+819012345678', TEL: '+819012345678', called: '+81501234567', did: '+81501234567', event: 'call.end', duration: '5' } };
}

describe.skipIf(!root)('a full disk under the store', () => {
  let sms: AossmsStandIn;
  let rx: HookReceiver;
  beforeEach(async () => {
    sms = await startAossms();
    rx = await startHookReceiver();
    cleanups.push(() => sms.close(), () => rx.close());
  });

  it('the outbox and the hook worker lose nothing they accepted, and report the problem while it lasts', async () => {
    const store: Store = openStore(`sqlite:${join(mnt, 'store.db')}`);
    cleanups.push(() => store.close());
    const provider = createHttpProvider(
      'aossms',
      httpProviderSchema.parse({ kind: 'http', url: sms.endpoint, body: { ...DEFAULT_CREDENTIALS, message: '{message}', phoneNumber: '{to}' }, timeout: '2s' }),
    );
    const outbox = new Outbox({ store, providers: { aossms: provider }, leaseMarginMs: 200, logger: quiet });
    cleanups.push(() => outbox.stop({ graceMs: 0 }));
    const { value } = parseConfigText(
      `asterisk:\n  ari: { user: u, password: p }\nhooks:\n  - { name: end, on: call.end, request: { url: "${rx.url}/end", body: { call: "{callId}" } } }\n`,
      'cfg.yaml',
      rootSchema,
      {},
    );
    const hooks = new HookWorker({ store, hooks: value.hooks, logger: quiet });
    cleanups.push(() => hooks.stop({ graceMs: 0 }));

    // accepted before the disk fills; the workers have not started, so all of it is still pending
    const accepted: string[] = [];
    for (let i = 0; i < 20; i++) accepted.push(...(await outbox.accept([{ callId: `c${i}`, description: 'd', provider: 'aossms', to: '+819012345678', text: `msg ${i}` }])).ids);
    const runs: string[] = [];
    for (let i = 0; i < 10; i++) runs.push(...(await hooks.enqueue(event())));
    expect(runs).toHaveLength(10);
    const writes = storeWrites(store);
    expect(await writes.problem()).toBeUndefined();

    fillDisk();
    // an accept now fails loudly (the step falls back): it was never accepted, so it is not owed
    let refused = 0;
    for (let i = 0; i < 20; i++) {
      try {
        await outbox.accept([{ callId: `late${i}`, description: 'd', provider: 'aossms', to: '+819012345678', text: 'x'.repeat(4000) }]);
      } catch (e) {
        expect((e as { code?: string }).code).toMatch(/^SQLITE_(FULL|IOERR)/);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(0);
    outbox.start();
    hooks.start();
    const problem = await until('a write problem', () => writes.problem());
    expect(problem.code).toMatch(/^SQLITE_(FULL|IOERR)/);
    await new Promise((r) => setTimeout(r, 1500));
    // nothing could be claimed, so nothing went out twice or half-recorded
    expect(await writes.problem()).toBeDefined();

    freeDisk();
    await until('every accepted SMS delivered', () => sms.delivered.length >= accepted.length);
    await until('every hook run delivered', () => rx.to('/end').length >= runs.length);
    expect(await writes.problem()).toBeUndefined();
    // exactly once each: the stand-in counts every message by its text
    const texts = sms.delivered.map((d) => d.message).filter((m) => m.startsWith('msg '));
    expect(texts.sort()).toEqual(Array.from({ length: 20 }, (_, i) => `msg ${i}`).sort());
    const calls = rx.to('/end').map((r) => new URLSearchParams(r.raw).get('call'));
    expect(new Set(calls).size).toBe(10);
    expect(calls).toHaveLength(10);
  }, 60_000);

  it('/health names the store problem while the disk is full, and clears once it is not', async () => {
    writeFileSync(join(mnt, 'keep'), '');
    const { value: config } = parseConfigText(
      `asterisk:\n  ari: { url: "http://127.0.0.1:9", user: u, password: p }\nstore: sqlite:${join(mnt, 'svc.db')}\nhttp: { host: 127.0.0.1, port: 0 }\nlog: { level: fatal }\ntts: { cacheDir: ${join(mnt, 'tts')} }\n`,
      'cfg.yaml',
      rootSchema,
      {},
    );
    const service: Service = await startService(config, { log: quiet as never });
    cleanups.push(() => service.stop());
    const health = async () => (await (await fetch(`${service.url}/health`)).json()) as { ok: boolean; store: { ready: boolean; error?: string } };
    expect((await health()).store).toEqual({ ready: true });

    fillDisk();
    // an idle service finds out by itself (the probe after 10 s without a write), not only the next caller
    let h = await health();
    const end = Date.now() + 15_000;
    while (!h.store.error && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 500));
      h = await health();
    }
    expect(h.ok).toBe(false);
    expect(h.store.ready).toBe(false);
    expect(h.store.error, h.store.error).toMatch(/the store cannot be written \(SQLITE_(FULL|IOERR)[^)]*\); accepted SMS, hook runs and CRM activities wait/);

    freeDisk();
    await new Promise((r) => setTimeout(r, 1100));
    expect((await health()).store).toEqual({ ready: true });
  }, 60_000);
});
