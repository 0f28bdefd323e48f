import type { StorePort } from './port.js';

/**
 * Whether the store can be written. `ready()` (SELECT 1) stays true on a full disk or a store
 * remounted read-only, while every accept, claim and settle fails with SQLITE_FULL,
 * SQLITE_READONLY or SQLITE_IOERR. The durable queues report each write they could or could not
 * make here, one tracker per store; /health shows the problem until a write succeeds again (a
 * queue's next claim, or the probe /health makes: once a second while there is a problem, else
 * after 10 s without a write).
 *
 * Nothing accepted is lost meanwhile: a row written before the disk filled stays pending, or
 * leased and taken back when its lease runs out (src/queue/leased-table.ts); the worker retries
 * its claim every second; an accept that fails was never accepted (the step says so).
 */

export interface WriteProblem {
  /** SQLite's or the OS's code: SQLITE_FULL, SQLITE_READONLY, SQLITE_IOERR_WRITE, ENOSPC… */
  code: string;
  message: string;
  /** ISO time of the first failure since the last success */
  since: string;
  /** failed writes since then */
  failures: number;
}

type Probeable = Pick<StorePort, 'kind' | 'transaction'>;

export class WriteHealth {
  private current: WriteProblem | undefined;
  private lastProbe = 0;
  private lastSuccess = 0;

  constructor(private readonly store: Probeable) {}

  /** A write failed; only storage errors count (a constraint violation says nothing about the disk). */
  failed(err: unknown): void {
    if (!isStorageError(err)) return;
    const e = err as { code?: string; message?: string };
    if (this.current) this.current.failures++;
    else this.current = { code: e.code ?? 'unknown', message: e.message ?? String(err), since: new Date().toISOString(), failures: 1 };
  }

  succeeded(): void {
    this.current = undefined;
    this.lastSuccess = Date.now();
  }

  /**
   * The problem, or undefined when writes work. Checked by a probe write at most once a second
   * while there is a problem, and otherwise when nothing was written for 10 s (an idle service
   * learns of a full disk before the next caller's SMS does).
   */
  async problem(now: number = Date.now()): Promise<WriteProblem | undefined> {
    const idle = now - Math.max(this.lastProbe, this.lastSuccess) >= 10_000;
    if ((this.current && now - this.lastProbe >= 1000) || (!this.current && idle)) {
      this.lastProbe = now;
      await this.probe();
    }
    return this.current;
  }

  /**
   * A real write and commit. SQLite: rewrites the header's user_version (unused here). PostgreSQL:
   * a transaction that takes a transaction id, so its commit is written to the WAL.
   */
  private async probe(): Promise<void> {
    try {
      await this.store.transaction(async (tx) => {
        if (tx.kind === 'sqlite') {
          const v = (await tx.one<{ user_version: number }>('PRAGMA user_version'))?.user_version ?? 0;
          await tx.run(`PRAGMA user_version = ${Number(v) | 0}`);
        } else {
          await tx.query('SELECT txid_current()');
        }
      });
      this.succeeded();
    } catch (e) {
      this.failed(e);
    }
  }
}

const trackers = new WeakMap<object, WriteHealth>();

/** The one tracker of this store (every queue on it reports to the same one). */
export function storeWrites(store: Probeable): WriteHealth {
  let t = trackers.get(store);
  if (!t) trackers.set(store, (t = new WriteHealth(store)));
  return t;
}

/** SQLite's and the OS's codes, and PostgreSQL's SQLSTATEs for a full disk (53100), a read-only server (25006) and an I/O error (58030). */
const STORAGE_CODES = /^(SQLITE_(FULL|READONLY|IOERR|CANTOPEN|CORRUPT|NOTADB|PROTOCOL)|ENOSPC|EROFS|EIO|EDQUOT|53100$|25006$|58030$)/;

/** A failure of the storage itself, not of the statement. */
export function isStorageError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && STORAGE_CODES.test(code);
}
