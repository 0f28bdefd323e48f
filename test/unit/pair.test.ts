import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { AriChannel } from '../../src/asterisk/ari-events.js';
import { PairWatch, pairSchema, PEER_LOST, type PairAri } from '../../src/app/pair.js';
import { openStore, type Store } from '../../src/store/sqlite.js';

const log = pino({ level: 'silent' });
const dirs: string[] = [];
const stores: Store[] = [];
const watches: PairWatch[] = [];
afterEach(async () => {
  for (const w of watches.splice(0)) await w.stop();
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function sharedFile(): string {
  const d = mkdtempSync(join(tmpdir(), 'call-actions-pair-'));
  dirs.push(d);
  return `sqlite:${join(d, 'store.db')}`;
}

function channel(id: string, appData: string | undefined): AriChannel {
  return {
    id,
    name: `PJSIP/${id}`,
    state: 'Up',
    caller: { name: '', number: '' },
    connected: { name: '', number: '' },
    dialplan: { context: 'c', exten: 's', priority: 1, ...(appData === undefined ? {} : { app_name: 'Stasis', app_data: appData }) },
  };
}

function fakeAri(channels: AriChannel[]): PairAri & { handedBack: Array<[string, Record<string, string>]> } {
  const handedBack: Array<[string, Record<string, string>]> = [];
  return { ready: true, handedBack, listChannels: async () => channels, handBack: async (id, vars) => void handedBack.push([id, vars]) };
}

/** Two instances on one store with a shared, hand-moved clock; A's timers are not used (ticks are driven). */
function pairOf(url: string, ari: PairAri) {
  let now = 1_000_000;
  const clock = { now: () => now, advance: (ms: number) => (now += ms) };
  const open = (app: string, peers: string[], wake: () => void, a: PairAri) => {
    const store = openStore(url);
    stores.push(store);
    const w = new PairWatch({ config: pairSchema.parse({ peers, heartbeat: '1s', deadAfter: '3s' }), app, store, ari: a, wake, log, now: clock.now });
    watches.push(w);
    return w;
  };
  return { clock, open, ari };
}

const flush = () => new Promise((r) => setImmediate(r));

describe('PairWatch', () => {
  it('takes over a silent peer: wakes the workers once, hands back only the callers in its application', async () => {
    const ari = fakeAri([channel('a1', 'call-actions-a,queue-exit,queue=support'), channel('b1', 'call-actions-b,held'), channel('x', undefined), channel('a2', 'call-actions-a')]);
    const { clock, open } = pairOf(sharedFile(), ari);
    let wokeB = 0;
    const a = open('call-actions-a', ['call-actions-b'], () => {}, fakeAri([]));
    const b = open('call-actions-b', ['call-actions-a'], () => wokeB++, ari);
    await a.start();
    await b.start();
    expect((await b.peers())['call-actions-a']).toMatchObject({ alive: true, stopped: false });
    expect(wokeB).toBe(0);

    // A dies: its heartbeat (every real second) never comes within this test, whose clock is moved by hand.
    // Still alive within deadAfter, lost after it
    clock.advance(2_000);
    await b.tick();
    expect(wokeB).toBe(0);
    expect(ari.handedBack).toEqual([]);
    clock.advance(1_500);
    await b.tick();
    await flush();
    expect(wokeB).toBe(1);
    expect((await b.peers())['call-actions-a']).toMatchObject({ alive: false, stopped: false, silentMs: 3_500 });
    expect(ari.handedBack).toEqual([
      ['a1', { CALL_ACTIONS_REFUSED: PEER_LOST }],
      ['a2', { CALL_ACTIONS_REFUSED: PEER_LOST }],
    ]);
    // still lost on the next tick: no second wake
    clock.advance(1_000);
    await b.tick();
    await flush();
    expect(wokeB).toBe(1);
  });

  it('a peer that stops says so: taken over at once, and alive again when it starts', async () => {
    const url = sharedFile();
    const ari = fakeAri([]);
    const { clock, open } = pairOf(url, ari);
    let wokeB = 0;
    const a = open('call-actions-a', ['call-actions-b'], () => {}, fakeAri([]));
    const b = open('call-actions-b', ['call-actions-a'], () => wokeB++, ari);
    await a.start();
    await b.start();
    await a.stop();
    clock.advance(100);
    await b.tick();
    expect(wokeB).toBe(1);
    expect((await b.peers())['call-actions-a']).toMatchObject({ alive: false, stopped: true });
    await a.start();
    await b.tick();
    expect((await b.peers())['call-actions-a']).toMatchObject({ alive: true, stopped: false });
  });

  it('without peers writes nothing', async () => {
    const store = openStore(sharedFile());
    stores.push(store);
    const w = new PairWatch({ config: pairSchema.parse({}), app: 'call-actions', store, ari: fakeAri([]), wake: () => {}, log });
    watches.push(w);
    await w.start();
    expect(store.db.prepare('SELECT count(*) AS n FROM instances').get()).toEqual({ n: 0 });
  });

  it('refuses a deadAfter under twice the heartbeat', () => {
    const r = pairSchema.safeParse({ peers: ['b'], heartbeat: '2s', deadAfter: '3s' });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]).toMatchObject({ path: ['deadAfter'] });
  });
});
