import { maskNumber } from '../log.js';

/**
 * What a `viewer` token sees: phone numbers masked the way the info-level log masks them (first
 * 4 digits and last 2). Fields that hold a number are masked whole; inside other text (request
 * and answer bodies, URLs, SMS texts) every run that looks like a phone number is. Ids and times
 * are left alone, so a masked page still links to the right call.
 */

const NUMBER_FIELD = /^(to|from|caller|callerid|callernumber|recipient|number|phone|phonenumber|did|exten|ani|msisdn|destination|connected|connectedline)$/i;
const LEAVE = /(^id$|id$|Id$|At$|_at$|^at$|^time$|^stage$|^step$|^status$)/;
/** + and 7–15 digits, spaces, dots or dashes between them; not inside a longer word or number */
const PHONE_IN_TEXT = /(?<![\w.])\+?\d[\d\s().-]{5,18}\d(?![\w])/g;

export function maskForViewer(value: unknown, key = ''): unknown {
  if (typeof value === 'string') {
    if (LEAVE.test(key)) return value;
    if (NUMBER_FIELD.test(key)) return maskNumber(value, 'info');
    return value.replace(PHONE_IN_TEXT, (m) => (m.replace(/\D/g, '').length >= 7 ? maskNumber(m, 'info')! : m));
  }
  if (Array.isArray(value)) return value.map((v) => maskForViewer(v, key));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = maskForViewer(v, k);
    return out;
  }
  return value;
}
