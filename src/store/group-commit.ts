import type { Store } from './sqlite.js';

/**
 * Rows written together, one transaction per `maxDelayMs`, instead of one transaction each.
 * With synchronous=FULL every commit waits for an fsync (about a millisecond on an ordinary
 * disk) with the event loop blocked, so a log row per call would delay every other call by that
 * much. For logs that explain calls rather than carry them: a crash loses at most the rows of the
 * last interval, and a reader in another process sees a row that much later.
 */
export interface GroupCommit<T> {
  push(row: T): void;
  /** Writes what is pending now (before a query of the same table, and on shutdown). */
  flush(): void;
}

export function groupCommit<T>(
  store: Store,
  write: (row: T) => void,
  opts: { maxDelayMs: number; maxRows: number; onError: (err: unknown, rows: number) => void },
): GroupCommit<T> {
  let pending: T[] = [];
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (!pending.length) return;
    const rows = pending;
    pending = [];
    // synchronous=NORMAL for this commit only: in WAL mode it skips the fsync (the rows are in
    // the OS's cache at once, and on disk with the next FULL commit or checkpoint), so the loop
    // is not blocked for the disk; a process crash still loses nothing committed, only the
    // machine losing power can. The outbox's own commits keep FULL.
    try {
      store.db.pragma('synchronous = NORMAL');
      store.db.transaction(() => {
        for (const r of rows) write(r);
      })();
    } catch (e) {
      opts.onError(e, rows.length);
    } finally {
      if (store.db.open) store.db.pragma('synchronous = FULL');
    }
  };
  return {
    push(row) {
      pending.push(row);
      if (pending.length >= opts.maxRows) flush();
      else if (!timer) {
        timer = setTimeout(flush, opts.maxDelayMs);
        timer.unref();
      }
    },
    flush,
  };
}
