import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/**
 * A PostgreSQL cluster of the tests' own: initdb in a temp folder, its own port, loopback only,
 * its unix socket in that folder; nothing depends on a server the machine happened to have.
 * Debian's `postgresql` is installed with apt-get when no initdb is found (CI is a fresh Debian
 * machine, as root). PostgreSQL refuses to run as root, so there it runs as the `postgres` user
 * the package creates, in a folder that user owns.
 *
 * The benchmark (bench/outbox.js) starts one too, from the build of `npm run build:standins`.
 *
 * `CALL_ACTIONS_NO_POSTGRES=1` skips the PostgreSQL half of the store tests; without it a cluster
 * that cannot start fails the tests instead of hiding them.
 */

export const POSTGRES_SKIPPED = process.env.CALL_ACTIONS_NO_POSTGRES === '1';

export interface TestCluster {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` */
  readonly url: string;
  readonly port: number;
  /** A fresh, empty database on the cluster; its URL. */
  database(): Promise<string>;
  /** Stops the server (connections are cut), as an outage does. */
  stop(): void;
  /** Starts it again on the same port. */
  start(): void;
  /** Stops it and removes its folder. */
  destroy(): void;
}

function findBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : undefined;
}

function install(): void {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update'], { stdio: 'ignore', env });
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'postgresql'], { stdio: 'ignore', env });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface ClusterOptions {
  /**
   * Keep PostgreSQL's own durability (fsync, full-page writes): what bench/outbox.js measures
   * against SQLite's synchronous=FULL. The tests do without it, for speed.
   */
  durable?: boolean;
}

export async function startTestCluster(opts: ClusterOptions = {}): Promise<TestCluster> {
  let bin = findBin();
  if (!bin) {
    install();
    bin = findBin();
    if (!bin) throw new Error('PostgreSQL was installed but no initdb is found under /usr/lib/postgresql');
  }
  const root = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'call-actions-pg-'));
  const data = join(dir, 'data');
  chmodSync(dir, 0o755);
  if (root) execFileSync('chown', ['postgres:postgres', dir]);
  const as = (cmd: string, args: string[]) => {
    const r = root ? spawnSync('runuser', ['-u', 'postgres', '--', join(bin!, cmd), ...args], { encoding: 'utf8' }) : spawnSync(join(bin!, cmd), args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} failed (${r.status}): ${r.stderr || r.stdout}`);
  };
  as('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8']);
  const port = await freePort();
  // loopback only; the socket in our folder; fsync off unless asked: a test cluster need not survive a power cut
  const speed = opts.durable ? '' : ' -c fsync=off -c full_page_writes=off';
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1${speed} -c max_connections=200`;
  const start = () => as('pg_ctl', ['-D', data, '-o', options, '-l', join(dir, 'log'), '-w', 'start']);
  const stop = () => as('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
  start();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let n = 0;
  return {
    url,
    port,
    async database() {
      const name = `t${process.pid}_${++n}`;
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${name}`);
      } finally {
        await c.end();
      }
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    stop,
    start,
    destroy() {
      try {
        as('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
