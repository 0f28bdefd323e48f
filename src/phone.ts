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

/** The two forms of a number offered beside the number as dialled: `{caller.e164}`, `{caller.national}`. */
export const NUMBER_FORMS = ['e164', 'national'] as const;
export type NumberForm = (typeof NUMBER_FORMS)[number];

/**
 * A number in E.164 (`+81455556666`) and in national digits with the trunk prefix and no
 * separators (`0455556666`); both empty when it is no valid phone number (a withheld caller, an
 * internal extension). A national number needs the default country to be read.
 */
export function numberForms(raw: string | undefined, defaultCountry?: CountryCode): Record<NumberForm, string> {
  const value = (raw ?? '').trim();
  // no phone number has fewer than 5 digits (an extension, "s", a key): not worth a parse
  if (value.replace(/\D/g, '').length < 5) return { e164: '', national: '' };
  const international = value.startsWith('00') ? `+${value.slice(2)}` : value;
  const parsed = parsePhoneNumberFromString(international, defaultCountry ? { defaultCountry } : undefined);
  if (!parsed?.isValid()) return { e164: '', national: '' };
  return { e164: parsed.number, national: parsed.formatNational().replace(/\D/g, '') };
}

/**
 * `{name.e164}` and `{name.national}` for each of `names`, defined on `target` as fields that read
 * the number only when first asked for, then keep the value. A stage's call has them all, but
 * a routed call rarely merges one, and reading a number (libphonenumber's parse and format) was
 * about a twentieth of the service's CPU per routed call. They are enumerable, so spreading or
 * serialising the fields still carries them; assigning one replaces it with the given value.
 * The numbers are those of `vars` now: a later change to `{caller}` does not change `{caller.e164}`,
 * as with numberFields().
 */
export function defineNumberFields(
  target: Record<string, string>,
  vars: Readonly<Record<string, string | undefined>>,
  names: readonly string[],
  defaultCountry?: CountryCode,
): void {
  let state = (target as Partial<Record<typeof NUMBERS, NumberState>>)[NUMBERS];
  if (!state || state.owner !== target) {
    state = { owner: target, raw: new Map(), read: new Map() };
    Object.defineProperty(target, NUMBERS, { value: state, configurable: true });
  }
  for (const name of names) {
    state.raw.set(name, { raw: vars[name], defaultCountry });
    Object.defineProperties(target, accessorsOf(name));
  }
}

/**
 * The numbers a target's fields are read from, kept on the target itself (not enumerable), so
 * that the fields' getters and setters are the same functions for every call: defining a closure
 * pair per field and call was most of the cost of a call's merge fields.
 */
const NUMBERS = Symbol('number fields');

interface NumberState {
  owner: Record<string, string>;
  raw: Map<string, { raw: string | undefined; defaultCountry?: CountryCode }>;
  /** {caller} and {TEL}, {called} and {did} are mostly the same number: each is read once */
  read: Map<string, Record<NumberForm, string>>;
}

const accessors = new Map<string, PropertyDescriptorMap>();

function accessorsOf(name: string): PropertyDescriptorMap {
  let map = accessors.get(name);
  if (map) return map;
  map = {};
  for (const form of NUMBER_FORMS) {
    const key = `${name}.${form}`;
    const settle = (o: object, value: string) => Object.defineProperty(o, key, { value, writable: true, enumerable: true, configurable: true });
    map[key] = {
      enumerable: true,
      configurable: true,
      get(this: Record<typeof NUMBERS, NumberState>) {
        const state = this[NUMBERS];
        const { raw, defaultCountry } = state.raw.get(name)!;
        const at = `${defaultCountry ?? ''}|${raw ?? ''}`;
        let forms = state.read.get(at);
        if (!forms) state.read.set(at, (forms = numberForms(raw, defaultCountry)));
        settle(state.owner, forms[form]);
        return forms[form];
      },
      set(this: Record<typeof NUMBERS, NumberState>, value: string) {
        settle(this[NUMBERS].owner, value);
      },
    };
  }
  accessors.set(name, map);
  return map;
}

/** `{name.e164}` and `{name.national}` for each of `names`: the merge fields beside a number. */
export function numberFields(vars: Readonly<Record<string, string | undefined>>, names: readonly string[], defaultCountry?: CountryCode): Record<string, string> {
  const lazy: Record<string, string> = {};
  defineNumberFields(lazy, vars, names, defaultCountry);
  // a copy reads every field now: the eager form, for callers that use most of them
  return { ...lazy };
}
