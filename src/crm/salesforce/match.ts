import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import type { SearchRecord } from './client.js';

/**
 * Which Salesforce record a call's activity belongs to (SF6).
 *
 * A record id passed by click-to-call wins. Otherwise the other party's number is looked up in ONE
 * SOSL request over the phone fields of Contact, Account and Lead (MiiTel spends up to three
 * look-ups, one per object). Salesforce stores numbers as typed and its search index splits them
 * into tokens at spaces and punctuation, so "(800) 555-1212" is found by the phrase
 * "800 555 1212" but not by 8005551212: the request carries every usual way of writing the number
 * (E.164 digits, national with and without the trunk prefix, national and international groupings).
 * Contact beats Account beats Lead; within one object the most recently modified record wins.
 */

export type MatchRule = 'click-to-call' | 'contact' | 'account' | 'lead' | 'not-found' | 'no-number' | 'internal';

export interface Match {
  rule: MatchRule;
  recordId?: string;
  /** Contact, Account, Lead, or the object a click-to-call id's key prefix names. */
  recordType?: string;
  /** True when the match came from the short cache, without a request. */
  cached?: boolean;
}

/** The object priority MiiTel uses. */
export const PRIORITY = ['Contact', 'Account', 'Lead'] as const;

const WITHHELD = new Set(['', 'anonymous', 'unknown', 'restricted', 'private', 'unavailable', 'withheld', 'blocked']);
const RECORD_ID = /^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$/;
const KEY_PREFIX: Record<string, string> = { '003': 'Contact', '001': 'Account', '00Q': 'Lead', '006': 'Opportunity', '500': 'Case' };

/** A click-to-call record id and its object, from the key prefix; undefined when it is no id. */
export function clickToCall(value: string | undefined): Match | undefined {
  const id = value?.trim();
  if (!id || !RECORD_ID.test(id)) return undefined;
  return { rule: 'click-to-call', recordId: id, recordType: KEY_PREFIX[id.slice(0, 3)] ?? 'Other' };
}

/** Fewer digits than any outside number has: an extension, so the call is between our own phones. */
const MIN_OUTSIDE_DIGITS = 6;

/**
 * True for one of our own phones: an extension (201) or a SIP user name (staff). No customer is
 * on such a call. A withheld or empty caller ID is a customer who hides the number.
 */
export function isInternal(number: string): boolean {
  const value = number.trim();
  if (WITHHELD.has(value.toLowerCase())) return false;
  const digits = value.replace(/\D/g, '');
  if (!digits) return true;
  return digits.length < MIN_OUTSIDE_DIGITS && /^[\d*#+\s-]+$/.test(value);
}

/** Contacts and Leads are the Task's WhoId; anything else (Account, Opportunity…) its WhatId. */
export function isWho(recordType: string | undefined): boolean {
  return recordType === 'Contact' || recordType === 'Lead';
}

/**
 * The ways the number may have been typed into Salesforce, each as its search tokens.
 * Empty for a withheld or empty number.
 */
export function phoneVariants(raw: string, defaultCountry?: CountryCode): string[][] {
  const value = raw.trim();
  if (WITHHELD.has(value.toLowerCase())) return [];
  const seen = new Map<string, string[]>();
  const add = (text: string) => {
    const tokens = text.match(/\d+/g) ?? [];
    if (tokens.join('').length < 3) return;
    seen.set(tokens.join(' '), tokens);
  };
  add(value);
  const digits = value.replace(/\D/g, '');
  if (digits) add(digits);
  const intl = value.startsWith('00') ? `+${value.slice(2)}` : value;
  const parsed = parsePhoneNumberFromString(intl, defaultCountry ? { defaultCountry } : undefined);
  if (parsed?.isPossible()) {
    const national = parsed.formatNational();
    add(parsed.number); // E.164 without its +, e.g. 18005551212, 81312345678
    add(parsed.nationalNumber); // 8005551212, 312345678
    add(national); // (800) 555-1212, 03-1234-5678
    add(national.replace(/\D/g, '')); // 0312345678
    add(parsed.formatInternational()); // +1 800 555 1212, +81 3 1234 5678
    add(`${parsed.countryCallingCode} ${parsed.nationalNumber}`); // +1 8005551212
  }
  return [...seen.values()];
}

/** The one SOSL request: every variant, the three objects in priority order, newest first. */
export function soslFor(variants: readonly string[][]): string {
  const terms = variants.map((t) => (t.length === 1 ? t[0]! : `"${t.join(' ')}"`));
  const returning = PRIORITY.map((o) => `${o}(Id, LastModifiedDate ORDER BY LastModifiedDate DESC LIMIT 1)`).join(', ');
  return `FIND {${terms.join(' OR ')}} IN PHONE FIELDS RETURNING ${returning}`;
}

/** Contact > Account > Lead; the newest within the winning object. */
export function pick(records: readonly SearchRecord[]): Match {
  for (const type of PRIORITY) {
    const candidates = records.filter((r) => r.type === type);
    if (!candidates.length) continue;
    const newest = candidates.reduce((a, b) => (Date.parse(b.LastModifiedDate ?? '') > Date.parse(a.LastModifiedDate ?? '') ? b : a));
    return { rule: type.toLowerCase() as MatchRule, recordId: newest.Id, recordType: type };
  }
  return { rule: 'not-found' };
}

/** Recent matches by number, so a burst of calls from one number costs one search. */
export class MatchCache {
  private readonly entries = new Map<string, { match: Match; until: number }>();
  constructor(private readonly ttlMs: number, private readonly max = 10_000) {}

  get(key: string, now: number = Date.now()): Match | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.until <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return { ...e.match, cached: true };
  }

  set(key: string, match: Match, now: number = Date.now()): void {
    if (this.ttlMs <= 0) return;
    if (this.entries.size >= this.max) {
      // Map iteration is insertion order: drop the oldest.
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(key, { match: { ...match }, until: now + this.ttlMs });
  }
}
