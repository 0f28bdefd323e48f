/**
 * The effective config as the flow view shows it: secrets redacted (fields whose name looks like a
 * credential, and any value read from the environment for one), regular expressions as written.
 */
const SECRET_KEY = /pass|secret|token|key|auth|sid|credential/i;

export function redactConfig(value: unknown, secrets: readonly string[], key = ''): unknown {
  if (value instanceof RegExp) return String(value);
  if (typeof value === 'string') {
    if (SECRET_KEY.test(key) && key !== 'idempotencyKey') return '[redacted]';
    let v = value;
    for (const s of secrets) if (s.length >= 4 && v.includes(s)) v = v.split(s).join('[redacted]');
    return v;
  }
  if (Array.isArray(value)) return value.map((v) => redactConfig(v, secrets, key));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === 'where') continue;
      out[k] = SECRET_KEY.test(k) && (typeof v === 'string' || typeof v === 'number') ? '[redacted]' : redactConfig(v, secrets, k);
    }
    return out;
  }
  return value;
}
