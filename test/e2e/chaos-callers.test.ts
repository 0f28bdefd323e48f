import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { placeCalls } from '../../bench/lib/sipp-calls.js';
import { REPO_ROOT } from '../helpers/asterisk.js';

/**
 * The chaos run's callers (bench/lib/sipp-calls.js): one SIPp process places many calls, and the
 * run's checks and its report of each failed call still need to know how every single one ended.
 * The peer is a SIPp stand-in (test/sipp/chaos_peer.xml), not Asterisk: it answers and hangs up,
 * leaves a caller named "silent" unanswered and answers one named "busy" with a 486.
 */
const dir = mkdtempSync(join(tmpdir(), 'chaos-callers-'));
const PEER_PORT = 5910;
let peer: ChildProcess;

beforeAll(async () => {
  peer = spawn('sipp', ['-sf', join(REPO_ROOT, 'test/sipp/chaos_peer.xml'), '-i', '127.0.0.1', '-p', String(PEER_PORT), '-cp', String(PEER_PORT + 2), '-mi', '127.0.0.1', '-mp', '16910', '-nostdin'], {
    cwd: dir,
    stdio: 'ignore',
  });
  await new Promise((r) => setTimeout(r, 500));
});
afterAll(() => {
  peer?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const callers = [
  { from: '+819020000001', name: 'Chaos 1' },
  { from: '+819020000002', name: 'silent 2' },
  { from: '+819020000003', name: 'busy 3' },
  { from: '+819020000004', name: 'Chaos 4' },
  { from: '+819020000005', name: 'Chaos 5' },
];
const base = { scenario: join(REPO_ROOT, 'bench/sipp/chaos_route.xml'), service: '501', localPort: 5914, mediaPort: 16914, remote: `127.0.0.1:${PEER_PORT}`, timeoutS: 60 };

describe('chaos callers: one SIPp process, an outcome per call', () => {
  it('tells the calls that got their BYE from one left unanswered and one refused, by caller', async () => {
    const started = Date.now();
    const r = await placeCalls({ ...base, callers, rate: 5, dir: join(dir, 'mixed') }).done;
    const by = new Map(r.calls.map((c) => [c.from, c]));
    expect([...by.keys()].sort()).toEqual(callers.map((c) => c.from));
    // one INVITE every 200 ms from one process, not all at once
    const starts = r.calls.map((c) => c.start).sort((a, b) => a - b);
    expect(starts[0]).toBeGreaterThanOrEqual(started - 50);
    expect(starts[4]! - starts[0]!).toBeGreaterThanOrEqual(600);
    for (const from of ['+819020000001', '+819020000004', '+819020000005']) {
      const c = by.get(from)!;
      expect(c.code, JSON.stringify(c)).toBe(0);
      // the peer hangs up 300 ms after the answer
      expect(c.end - c.start).toBeGreaterThanOrEqual(250);
      expect(c.tail).toBeUndefined();
    }
    const silent = by.get('+819020000002')!;
    expect(silent.code).toBe(1);
    expect(silent.tail).toMatch(/receive timeout/);
    expect(silent.tail).toContain(silent.callId);
    // the scenario waits 5 s for the 200 OK; the failure's time is when sipp gave up, not the run's end
    expect(silent.end - silent.start).toBeGreaterThanOrEqual(4500);
    expect(silent.end - silent.start).toBeLessThan(10_000);
    const busy = by.get('+819020000003')!;
    expect(busy.code).toBe(1);
    expect(busy.tail).toMatch(/unexpected message[\s\S]*486 Busy Here/);
    expect(busy.end - busy.start).toBeLessThan(2000);
    expect(r.exit.code).toBe(1);
  }, 30_000);

  it('stop() places no more calls; a call under way when sipp is killed counts as failed, with no end of its own', async () => {
    const many = Array.from({ length: 40 }, (_, k) => ({ from: `+81903${String(k).padStart(7, '0')}`, name: k % 4 === 3 ? `silent ${k}` : `Chaos ${k}` }));
    const stopped = placeCalls({ ...base, callers: many, rate: 10, dir: join(dir, 'stopped') });
    await new Promise((r) => setTimeout(r, 1000));
    stopped.stop();
    const s = await stopped.done;
    expect(s.calls.length).toBeGreaterThanOrEqual(5);
    expect(s.calls.length).toBeLessThan(20);
    // the calls under way were let end: an unanswered one by its own receive timeout
    expect(s.calls.every((c) => c.code === 0 || /receive timeout/.test(c.tail ?? ''))).toBe(true);

    const killed = placeCalls({ ...base, callers: many.map((c) => ({ ...c, name: `silent ${c.name}` })), rate: 10, dir: join(dir, 'killed') });
    await new Promise((r) => setTimeout(r, 1000));
    killed.kill();
    const k = await killed.done;
    expect(k.exit.signal).toBe('SIGKILL');
    expect(k.calls.length).toBeGreaterThanOrEqual(5);
    for (const c of k.calls) {
      expect(c.code).toBeNull();
      expect(c.tail).toMatch(/no end/);
      // nothing after its start is known of it, so no later restart or kill can be said to have ended it
      expect(c.end).toBe(c.start);
    }
  }, 30_000);
});
