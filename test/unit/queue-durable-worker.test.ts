import { setImmediate as turn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { DurableWorker, type DurableQueue } from '../../src/queue/durable-worker.js';

/**
 * The worker's slots: a job holds one until it calls release() (its work done, only its write
 * left) or finishes. An in-memory queue of ten jobs, whose writes wait for the test to let them go.
 */
function queue(opts: { release: boolean }) {
  const due = Array.from({ length: 10 }, (_, i) => `job-${i}`);
  const writes: Array<() => void> = [];
  const done: string[] = [];
  let running = 0;
  let maxRunning = 0;
  const q: DurableQueue<string> = {
    id: (j) => j,
    claim: async (room) => due.splice(0, room),
    nextWakeAt: async () => null,
    deliver: async (job, _stopping, release) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await turn();
      running--;
      if (opts.release) release();
      await new Promise<void>((resolve) => writes.push(resolve));
      done.push(job);
    },
    deliverFailed: () => undefined,
  };
  return {
    q,
    due,
    done,
    writes,
    maxRunning: () => maxRunning,
    /** Lets every write waiting now go, and a few turns pass. */
    async flush() {
      for (const w of writes.splice(0)) w();
      for (let i = 0; i < 5; i++) await turn();
    },
  };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await turn();
}

describe('DurableWorker slots', () => {
  it('a job that released its slot lets the next claim run while its write waits, up to concurrency writes waiting', async () => {
    const t = queue({ release: true });
    const w = new DurableWorker(t.q, { concurrency: 2, ready: () => true, name: 'test' });
    w.start();
    await settle();
    // two working, released, writing; two more claimed in their slots; then the waiting writes hold it
    expect(w.busy).toBe(4);
    expect(t.due).toHaveLength(6);
    expect(t.maxRunning()).toBeLessThanOrEqual(2);
    while (t.done.length < 10) await t.flush();
    expect(t.done.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `job-${i}`).sort());
    expect(t.maxRunning()).toBeLessThanOrEqual(2);
    await w.stop();
  });

  it('a job that never releases holds its slot to the end', async () => {
    const t = queue({ release: false });
    const w = new DurableWorker(t.q, { concurrency: 2, ready: () => true, name: 'test' });
    w.start();
    await settle();
    expect(w.busy).toBe(2);
    expect(t.due).toHaveLength(8);
    while (t.done.length < 10) await t.flush();
    await w.stop();
  });

  it('stop() waits for the write of a job that released its slot', async () => {
    const t = queue({ release: true });
    const w = new DurableWorker(t.q, { concurrency: 1, ready: () => true, name: 'test' });
    w.start();
    await settle();
    let stopped = false;
    const stopping = w.stop({ graceMs: 10_000 }).then(() => (stopped = true));
    await settle();
    expect(stopped).toBe(false);
    await t.flush();
    await stopping;
    expect(stopped).toBe(true);
    expect(t.done).toHaveLength(2);
  });
});
