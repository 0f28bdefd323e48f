import type { CountryCode } from 'libphonenumber-js';
import { compileRequest, type BuiltRequest } from '../http/request.js';
import type { Vars } from '../template.js';
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
  const plan = planOf(cfg);
  // the request's own fields before the call's, not laid over a copy: a copy would read every
  // number form, and an object made per call with the call's fields as its prototype cost more
  // than building the whole request
  const own: Record<string, string> = {};
  for (const key of plan.facts) own[FACT_VAR[key]] = facts[key];
  const built = plan.build(vars, own);
  if (built.missing.length) built.missing = built.missing.filter((m) => !m.startsWith('__route_'));
  return built;
}

// A route's config is not changed after load (a reload makes new objects): its request's
// templates are read once, on its first call, rather than on every call.
const plans = new WeakMap<RouteConfig, { facts: FieldKey[]; build: (vars: Vars, own: Vars) => BuiltRequest }>();

function planOf(cfg: RouteConfig): { facts: FieldKey[]; build: (vars: Vars, own: Vars) => BuiltRequest } {
  let plan = plans.get(cfg);
  if (plan) return plan;
  const body: Record<string, string> = {};
  const facts = Object.keys(cfg.fields) as FieldKey[];
  for (const key of facts) body[cfg.fields[key]!] = `{${FACT_VAR[key]}}`;
  // The admin's fixed fields come after, so an extra field may not silently replace a call fact.
  for (const [k, v] of Object.entries(cfg.extra)) if (!(k in body)) body[k] = v;
  const method = cfg.method ?? (cfg.encoding === 'query' ? 'GET' : 'POST');
  plan = {
    facts,
    build: compileRequest({ url: cfg.url, method, encoding: cfg.encoding, headers: cfg.headers, body, xmlRoot: cfg.xmlRoot, timeoutMs: cfg.timeout }),
  };
  plans.set(cfg, plan);
  return plan;
}
