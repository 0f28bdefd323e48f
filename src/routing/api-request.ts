import type { CountryCode } from 'libphonenumber-js';
import { buildRequest, type BuiltRequest } from '../http/request.js';
import { numberForms } from '../phone.js';
import type { FieldKey, RouteConfig } from './settings.js';

/**
 * The request the seed's PBX sends: caller number, called number, PBX/trunk number, call id,
 * pressed digits and fixed custom fields, under the field names the admin chose (R2, R3). Every
 * value is escaped for where it lands by buildRequest (form, query, JSON or XML), so a caller ID
 * like `&x=<"` stays one value.
 */

export interface CallFacts {
  caller: string;
  called: string;
  /** The PBX's own (trunk) number: the dialplan's `pbx=` argument, else the dialled number. */
  pbx: string;
  callId: string;
  digits: string;
}

/** `numbers`: the form of caller, called and pbx (the route's `numbers:`); a value that is no phone number stays as dialled. */
export function callFacts(
  vars: Readonly<Record<string, string>>,
  callId: string,
  numbers: RouteConfig['numbers'] = 'dialled',
  defaultCountry?: CountryCode,
): CallFacts {
  const number = (raw: string) => (numbers === 'dialled' ? raw : numberForms(raw, defaultCountry)[numbers] || raw);
  return {
    caller: number(vars.caller ?? ''),
    called: number(vars.called ?? ''),
    pbx: number(vars.pbx || vars.did || vars.called || ''),
    callId,
    digits: vars.digits ?? '',
  };
}

/** Field values are referenced through private merge-field names, so no caller data is ever read as a template. */
const FACT_VAR: Record<FieldKey, string> = {
  caller: '__route_caller',
  called: '__route_called',
  pbx: '__route_pbx',
  callId: '__route_callId',
  digits: '__route_digits',
};

export function routeRequest(cfg: RouteConfig, facts: CallFacts, vars: Readonly<Record<string, string>>): BuiltRequest {
  const body: Record<string, string> = {};
  // the call's fields behind the request's own, not a copy: a copy would read every number form
  const values = Object.create(vars) as Record<string, string>;
  for (const [key, wire] of Object.entries(cfg.fields) as Array<[FieldKey, string]>) {
    body[wire] = `{${FACT_VAR[key]}}`;
    values[FACT_VAR[key]] = facts[key];
  }
  // The admin's fixed fields come after, so an extra field may not silently replace a call fact.
  for (const [k, v] of Object.entries(cfg.extra)) if (!(k in body)) body[k] = v;
  const method = cfg.method ?? (cfg.encoding === 'query' ? 'GET' : 'POST');
  const built = buildRequest(
    { url: cfg.url, method, encoding: cfg.encoding, headers: cfg.headers, body, xmlRoot: cfg.xmlRoot, timeoutMs: cfg.timeout },
    values,
  );
  built.missing = built.missing.filter((m) => !m.startsWith('__route_'));
  return built;
}
