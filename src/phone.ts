import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';

/** What Asterisk shows for a caller who withheld their number (and what carriers send instead). */
const WITHHELD = new Set(['', 'anonymous', 'unknown', 'restricted', 'private', 'unavailable', 'withheld', 'blocked']);

export type CallerNumber = { ok: true; e164: string } | { ok: false; reason: string };

/**
 * The caller's number as an SMS recipient. Withheld and invalid numbers are refused with a
 * reason the SMS history shows, because texting a made-up number costs money and helps nobody.
 */
export function callerAsRecipient(raw: string | undefined, defaultCountry?: CountryCode): CallerNumber {
  const value = (raw ?? '').trim();
  if (WITHHELD.has(value.toLowerCase())) return { ok: false, reason: 'caller ID withheld or anonymous' };
  const parsed = parsePhoneNumberFromString(value, defaultCountry ? { defaultCountry } : undefined);
  if (!parsed || !parsed.isValid()) return { ok: false, reason: `caller ID "${value}" is not a valid phone number` };
  if (parsed.getType() === 'FIXED_LINE') return { ok: false, reason: `caller ID "${value}" is a fixed line and cannot receive SMS` };
  return { ok: true, e164: parsed.number };
}

/**
 * A number as the SMS history stores it (E.164), so "+48 22 113 14 15", "0048221131415" or a
 * national number with the default country all find the same rows. Text that is no phone number
 * (e.g. "anonymous", recorded for a skipped caller) is returned as it is.
 */
export function normaliseNumber(raw: string, defaultCountry?: CountryCode): string {
  const value = raw.trim();
  const international = value.startsWith('00') ? `+${value.slice(2)}` : value;
  const parsed = parsePhoneNumberFromString(international, defaultCountry ? { defaultCountry } : undefined);
  return parsed?.isValid() ? parsed.number : value;
}

/**
 * A number in the two forms merge fields offer: E.164 (`+81354127788`) and national, as dialled
 * inside the country (`0354127788`, digits only). Numbers without + are read with
 * `defaultCountry`. Anything that is no valid phone number (an extension, "anonymous") is given
 * back as it is in both forms.
 */
export function numberForms(raw: string | undefined, defaultCountry?: CountryCode): { e164: string; national: string } {
  const value = (raw ?? '').trim();
  const international = value.startsWith('00') ? `+${value.slice(2)}` : value;
  const parsed = international ? parsePhoneNumberFromString(international, defaultCountry ? { defaultCountry } : undefined) : undefined;
  if (!parsed?.isValid()) return { e164: value, national: value };
  return { e164: parsed.number, national: parsed.formatNational().replace(/[^\d]/g, '') };
}
