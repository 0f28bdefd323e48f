/** Capped exponential backoff with full jitter, so many nodes reconnecting after one outage spread out. */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export interface ReconnectOptions {
  initialMs: number;
  maxMs: number;
  isStopped(): boolean;
  /** cuts the wait short (e.g. on stop) */
  wake?: () => AbortSignal | undefined;
  onError(err: Error, attempt: number): void;
}

/**
 * Connects, serves until the link is lost, and connects again — forever, until stopped. `session`
 * resolves true when it got connected (which resets the backoff) and false when it did not.
 */
export async function reconnectForever(session: () => Promise<boolean>, o: ReconnectOptions): Promise<void> {
  let attempt = 0;
  while (!o.isStopped()) {
    try {
      if (await session()) attempt = 0;
    } catch (e) {
      o.onError(e as Error, attempt);
    }
    if (o.isStopped()) break;
    await sleep(backoffDelay(attempt++, o.initialMs, o.maxMs), o.wake?.());
  }
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    t.unref?.();
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });

export class TimeoutError extends Error {
  override name = 'TimeoutError';
}
