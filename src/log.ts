import pino, { type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** Keys whose values are secrets wherever they appear in a logged object. */
const SECRET_KEYS = [
  'password', 'secret', 'token', 'authToken', 'clientSecret', 'apiKey', 'authorization', 'Authorization',
];

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** Where to write; defaults to stdout. Tests pass a stream to read the lines back. */
  destination?: pino.DestinationStream;
  /** Extra values (e.g. secrets from the environment) that must never appear in a log line. */
  secrets?: readonly string[];
}

/**
 * One JSON line per event. Secrets are redacted by key, and any known secret value is scrubbed
 * from the message text too, because a provider may echo a token back in an error body.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const secrets = (opts.secrets ?? []).filter((s) => s.length >= 4);
  const paths = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);
  return pino(
    {
      name: 'call-actions',
      level: opts.level ?? 'info',
      base: { pid: process.pid },
      redact: { paths, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
      hooks: secrets.length
        ? {
            logMethod(args, method) {
              method.apply(this, args.map((a) => scrub(a, secrets)) as Parameters<typeof method>);
            },
          }
        : undefined,
    },
    opts.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

function scrub(value: unknown, secrets: readonly string[]): unknown {
  if (typeof value === 'string') {
    let out = value;
    for (const s of secrets) out = out.split(s).join('[redacted]');
    return out;
  }
  if (value && typeof value === 'object' && !(value instanceof Error)) {
    const text = JSON.stringify(value);
    if (secrets.some((s) => text.includes(s))) return JSON.parse(scrub(text, secrets) as string);
  }
  return value;
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
