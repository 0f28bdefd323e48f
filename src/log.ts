import pino, { type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** Keys whose values are secrets wherever they appear in a logged object. */
const SECRET_KEYS = new Set([
  'password', 'secret', 'token', 'authToken', 'clientSecret', 'apiKey', 'authorization', 'Authorization',
]);
const CENSOR = '[redacted]';
/** How deep a logged object is searched for secret keys (pino's own redaction needs paths, and cost a tenth of a routed call). */
const REDACT_DEPTH = 4;
/**
 * Lines are written in batches of about this many characters or every FLUSH_MS, whichever comes
 * first: at 400 routed calls/s (two lines each) a write about every 60 ms rather than 70 a second.
 */
const BATCH_CHARS = 16384;
const FLUSH_MS = 100;

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** Where to write; defaults to stdout. Tests pass a stream to read the lines back. */
  destination?: pino.DestinationStream;
  /** Extra values (e.g. secrets from the environment) that must never appear in a log line. */
  secrets?: readonly string[];
}

/**
 * One JSON line per event. Secrets are redacted by key, and any known secret value is scrubbed
 * from the finished line too, because a provider may echo a token back in an error body.
 * stdout is written in batches (a write per line was most of the logging cost under load); a
 * crash loses at most the last FLUSH_MS of lines, a normal exit none.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const secrets = (opts.secrets ?? []).filter((s) => s.length >= 4);
  const dest = opts.destination ?? batchedStdout();
  return pino(
    {
      name: 'call-actions',
      level: opts.level ?? 'info',
      base: { pid: process.pid },
      // pino gives a child's bindings to serializers, never to formatters
      serializers: Object.fromEntries([...SECRET_KEYS].map((k) => [k, () => CENSOR])),
      formatters: {
        level: (label) => ({ level: label }),
        log: (o) => redactKeys(o, REDACT_DEPTH),
      },
    },
    secrets.length ? scrubbing(dest, secrets) : dest,
  );
}

/**
 * sonic-boom's `periodicFlush` would wake the process every FLUSH_MS even with nothing to write
 * (an empty write through the thread pool each time): most of an idle service's CPU. Instead a
 * timer is armed by the first line written after a flush.
 *
 * Lines are kept here, not in sonic-boom's `minLength` buffer: that one measures the UTF-8 length
 * of everything it holds again for every line it adds (a fifth of a log line's cost at 4 KB). Here
 * a line costs a push, and sonic-boom gets one string per batch. Its flush, flushSync and end
 * (pino's exit handler, service.stop) take the kept lines first.
 */
function batchedStdout(): pino.DestinationStream {
  const boom = pino.destination({ dest: 1, sync: false });
  const destroyed = () => (boom as unknown as { destroyed: boolean }).destroyed;
  const write = boom.write.bind(boom);
  let lines: string[] = [];
  let chars = 0;
  let timer: NodeJS.Timeout | undefined;
  const handOver = () => {
    clearTimeout(timer);
    timer = undefined;
    if (!lines.length) return true;
    const text = lines.length === 1 ? lines[0]! : lines.join('');
    lines = [];
    chars = 0;
    // writing to a destroyed stream throws, and it has nowhere to write to anyway
    return destroyed() ? false : write(text);
  };
  boom.write = (line: string) => {
    lines.push(line);
    // characters, not bytes: the batch size only needs to be about right
    chars += line.length;
    if (chars >= BATCH_CHARS) return handOver();
    if (!timer) {
      timer = setTimeout(handOver, FLUSH_MS);
      timer.unref();
    }
    return true;
  };
  const handingOver = <A extends unknown[], R>(fn: (...a: A) => R) => (...a: A): R => {
    handOver();
    return fn(...a);
  };
  boom.flush = handingOver(boom.flush.bind(boom));
  boom.end = handingOver(boom.end.bind(boom));
  // pino's exit handler: a write() here would start an asynchronous write that the exit cuts
  // short, so the kept lines join sonic-boom's buffer without starting one, and flushSync writes
  // them with the rest
  const flushSync = boom.flushSync.bind(boom);
  const settings = boom as unknown as { minLength: number };
  boom.flushSync = () => {
    const minLength = settings.minLength;
    settings.minLength = Infinity;
    try {
      handOver();
    } finally {
      settings.minLength = minLength;
    }
    flushSync();
  };
  return boom;
}

/** A copy of `value` with the values of secret keys censored; untouched parts are shared, not copied. */
function redactKeys(value: Record<string, unknown>, depth: number): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const key in value) {
    const v = value[key];
    const next = SECRET_KEYS.has(key) && v !== undefined ? CENSOR : depth > 1 ? redactWithin(v, depth - 1) : v;
    if (next !== v) (out ??= { ...value })[key] = next;
  }
  return out ?? value;
}

/** Plain objects and arrays are searched; anything else (errors, buffers, dates) is left to pino's serializers. */
function redactWithin(v: unknown, depth: number): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) {
    const mapped = v.map((x) => redactWithin(x, depth));
    return mapped.every((x, i) => x === v[i]) ? v : mapped;
  }
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null ? redactKeys(v as Record<string, unknown>, depth) : v;
}

/** The destination with every known secret value replaced, as written and as JSON escapes it. */
function scrubbing(dest: pino.DestinationStream, secrets: readonly string[]): pino.DestinationStream {
  const forms = [...new Set(secrets.flatMap((s) => [s, JSON.stringify(s).slice(1, -1)]))];
  const d = dest as pino.DestinationStream & { flush?(cb?: () => void): void; flushSync?(): void; end?(): void };
  return {
    write(line: string) {
      for (const f of forms) if (line.includes(f)) line = line.split(f).join(CENSOR);
      d.write(line);
    },
    ...(d.flush ? { flush: (cb?: () => void) => d.flush!(cb) } : {}),
    ...(d.flushSync ? { flushSync: () => d.flushSync!() } : {}),
    ...(d.end ? { end: () => d.end!() } : {}),
  } as pino.DestinationStream;
}

/**
 * Phone numbers in info-level logs keep their first 4 and last 2 digits: enough for an admin to
 * tell calls apart, not enough to identify a caller. Debug level shows them whole.
 */
export function maskNumber(number: string | undefined, level: string): string | undefined {
  if (!number || level === 'debug' || level === 'trace') return number;
  const digits = number.replace(/\D/g, '');
  if (digits.length < 7) return number.replace(/\d/g, '*');
  const keepHead = number.startsWith('+') ? 5 : 4;
  return number.slice(0, keepHead) + '*'.repeat(Math.max(0, number.length - keepHead - 2)) + number.slice(-2);
}
