import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GcPauses } from '../../src/app/gc-pauses.js';
import { memoryBreakdown } from '../../src/app/memory.js';
import { openStore } from '../../src/store/sqlite.js';
import { startAriServer, type AriServer } from '../helpers/ari-server.js';
import { REPO_ROOT } from '../helpers/asterisk.js';
import { freePort, serviceDir, startService, type RunningService } from '../helpers/service.js';

/**
 * Where a service's memory goes (/stats process.memory, read by the bench's memory run), and what
 * a fresh service does not load: the database driver its config does not name.
 */

const MB = 2 ** 20;

describe('memoryBreakdown', () => {
  it("bounds SQLite's page cache by the database's pages, then by cache_size", () => {
    const store = openStore(`sqlite:${join(serviceDir(), 'store.db')}`);
    try {
      const small = memoryBreakdown(store.pageCache).sqlitePageCache!;
      expect(small.pageSizeBytes).toBeGreaterThan(0);
      expect(small.limitBytes).toBe(2000 * 1024);
      expect(small.boundBytes).toBe(small.pages * small.pageSizeBytes);
      expect(small.boundBytes).toBeLessThan(small.limitBytes);

      store.db.exec('CREATE TABLE filler (x BLOB)');
      const insert = store.db.prepare('INSERT INTO filler VALUES (randomblob(4000))');
      store.db.transaction(() => {
        for (let i = 0; i < 1500; i++) insert.run();
      })();
      const big = memoryBreakdown(store.pageCache).sqlitePageCache!;
      expect(big.pages).toBeGreaterThan(small.pages + 1000);
      expect(big.boundBytes).toBe(big.limitBytes);
    } finally {
      void store.close();
    }
  });

  it("splits the kernel's RSS and accounts the heap by space", () => {
    const m = memoryBreakdown();
    expect(m.sqlitePageCache).toBeUndefined();
    const rss = m.rss!;
    expect(rss.anonBytes + rss.fileBytes + rss.shmemBytes).toBe(rss.totalBytes);
    // node's own code is file-backed: a process without it is not this one
    expect(rss.fileBytes).toBeGreaterThan(10 * MB);
    const { heapTotal } = process.memoryUsage();
    const committed = Object.values(m.heap).reduce((n, h) => n + h.residentBytes, 0);
    expect(committed).toBeGreaterThan(0);
    // resident pages of the heap cannot exceed what V8 has reserved for it
    expect(committed).toBeLessThanOrEqual(heapTotal);
    expect(m.heap.old.usedBytes).toBeGreaterThan(m.heap.code.usedBytes);
    const held = Buffer.alloc(8 * MB, 1);
    const after = memoryBreakdown();
    expect(after.arrayBuffersBytes - m.arrayBuffersBytes).toBeGreaterThanOrEqual(8 * MB);
    expect(after.otherAnonBytes).toBe(
      Math.max(0, after.rss!.anonBytes - Object.values(after.heap).reduce((n, h) => n + h.residentBytes, 0) - after.v8MallocBytes - after.externalBytes),
    );
    expect(held[0]).toBe(1);
  });
});

describe('GcPauses', () => {
  it("counts V8's collections by kind, with their pauses", async () => {
    const pauses = new GcPauses();
    pauses.start();
    try {
      // short-lived garbage, many times the new space: scavenges
      let keep = 0;
      for (let i = 0; i < 200_000; i++) keep += new Array(64).fill(i).length;
      expect(keep).toBe(200_000 * 64);
      // the observer hears of them asynchronously
      await new Promise((r) => setTimeout(r, 50));
      const minor = pauses.snapshot().minor!;
      expect(minor.count).toBeGreaterThan(0);
      expect(minor.sumMs).toBeGreaterThan(0);
    } finally {
      pauses.stop();
    }
  });
});

/** Which packages a process has loaded after opening `url` with the built openAnyStore (a process of its own: nothing else loaded first). */
function driversLoaded(url: string): string[] {
  const script = `
    import { createRequire } from 'node:module';
    const { openAnyStore } = await import(${JSON.stringify(join(REPO_ROOT, 'dist/store/open.js'))});
    const store = await openAnyStore(process.argv[1]).catch(() => undefined);
    await store?.close();
    const loaded = Object.keys(createRequire(import.meta.url).cache);
    console.log(JSON.stringify(['pg', 'better-sqlite3'].filter((p) => loaded.some((f) => f.includes(\`/node_modules/\${p}/\`)))));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script, url], { encoding: 'utf8', timeout: 20_000 });
  return JSON.parse(out) as string[];
}

describe('the store driver', () => {
  it('a SQLite store does not load node-postgres', () => {
    expect(driversLoaded(`sqlite:${join(serviceDir(), 'store.db')}`)).toEqual(['better-sqlite3']);
  });

  it('a PostgreSQL store does not load better-sqlite3', () => {
    // nothing listens on port 1: the first attempt fails, after the driver has been loaded
    expect(driversLoaded('postgres://nobody@127.0.0.1:1/none')).toEqual(['pg']);
  });
});

describe('/stats', () => {
  let ari: AriServer;
  let service: RunningService;

  beforeAll(async () => {
    ari = await startAriServer({ user: 'call-actions', password: 'ari-secret' });
    const dir = serviceDir();
    const port = freePort();
    service = await startService({
      dir,
      port,
      env: { ARI_PASSWORD: 'ari-secret' },
      config: `asterisk:
  ari: { url: "${ari.url}", user: call-actions, password: "\${ARI_PASSWORD}", timeout: 1s }
store: sqlite:${join(dir, 'store.db')}
http: { host: 127.0.0.1, port: ${port} }
tts: { cacheDir: ${join(dir, 'tts')} }
stages:
  s:
    - hangup: {}
`,
    });
  }, 60_000);

  afterAll(async () => {
    await service?.kill('SIGTERM');
    await ari?.close();
  });

  it("says where the process's memory goes", async () => {
    const stats = (await (await fetch(`${service.url}/stats`)).json()) as { process: { rssBytes: number; memory: ReturnType<typeof memoryBreakdown> } };
    const m = stats.process.memory;
    for (const space of ['new', 'old', 'code'] as const) expect(m.heap[space].residentBytes).toBeGreaterThan(0);
    expect(m.sqlitePageCache?.pages).toBeGreaterThan(0);
    expect(m.sqlitePageCache?.boundBytes).toBe(m.sqlitePageCache!.pages * m.sqlitePageCache!.pageSizeBytes);
    expect(m.rss?.totalBytes).toBeGreaterThan(0);
    expect(m.otherAnonBytes).toBeGreaterThanOrEqual(0);
    expect(stats.process).toHaveProperty('gcPauses');
    // src/app/v8-flags.ts: Node's default grows it to 16 MB a semi-space while the modules load
    expect(m.heap.new.residentBytes).toBeLessThanOrEqual(4 * MB);
  });
});
