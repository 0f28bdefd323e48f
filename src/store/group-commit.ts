import type { Queryable, StorePort } from './port.js';

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
  flush(): Promise<void>;
}

export function groupCommit<T>(
  store: StorePort,
  write: (tx: Queryable, row: T) => Promise<unknown>,
  opts: { maxDelayMs: number; maxRows: number; onError: (err: unknown, rows: number) => void },
): GroupCommit<T> {
  let pending: T[] = [];
  let timer: NodeJS.Timeout | undefined;
  const flush = async (): Promise<void> => {
    clearTimeout(timer);
    timer = undefined;
    if (!pending.length) return;
    const rows = pending;
    pending = [];
    // relaxed: on SQLite synchronous=NORMAL for this commit only. In WAL mode it skips the fsync
    // (the rows are in the OS's cache at once, and on disk with the next FULL commit or
    // checkpoint), so the loop is not blocked for the disk; a process crash still loses nothing
    // committed, only the machine losing power can. The outbox's own commits keep FULL.
    try {
      await store.transaction(
        async (tx) => {
          for (const r of rows) await write(tx, r);
        },
        { relaxed: true },
      );
    } catch (e) {
      opts.onError(e, rows.length);
    }
  };
  return {
    push(row) {
      pending.push(row);
      if (pending.length >= opts.maxRows) void flush();
      else if (!timer) {
        timer = setTimeout(() => void flush(), opts.maxDelayMs);
        timer.unref();
      }
    },
    flush,
  };
}
