import { classify, type AttemptResult } from '../http/failure.js';
import { parseAnswer, type RouteAnswer } from './answer.js';
import type { Outcome } from './history.js';
import { DIALPLAN_KINDS, DIALPLAN_NAME, NAMED_KINDS, RESULT_KINDS, type DestinationsConfig, type RoutingConfig } from './config.js';
import type { Destination, RouteConfig } from './settings.js';

/**
 * From what the customer's API did to where the caller goes. Pure, so every way an answer can be
 * wrong is tested without a call; every path that is not a usable answer ends in the fallback.
 */

/** A decision ends in one of the routing log's outcomes. */
export type { Outcome };

export interface Decision {
  outcome: Outcome;
  /** undefined: the route's fallback */
  destination?: Destination;
  /** why, in a few words, for the log */
  reason: string;
  answer?: RouteAnswer;
  /** the codes table (results:) chose the destination */
  mapped?: boolean;
}

export interface DecideContext {
  route: Pick<RouteConfig, 'results' | 'answer'>;
  routing: Pick<RoutingConfig, 'announcements' | 'menus' | 'timeconditions' | 'sms' | 'integrations'>;
  destinations: DestinationsConfig;
}

export function decide(result: AttemptResult, ctx: DecideContext): Decision {
  const c = classify(result);
  if (result.kind === 'thrown') return { outcome: 'transport', reason: `exception: ${String((result.error as Error)?.message ?? result.error)}` };
  if (result.kind === 'transport') {
    const k = result.error.kind;
    return { outcome: k === 'timeout' ? 'timeout' : k === 'connect' ? 'connect' : 'transport', reason: result.error.message };
  }
  if (c.outcome !== 'ok') return { outcome: 'http-error', reason: c.reason };
  const parsed = parseAnswer(result.body, {
    contentType: result.headers?.['content-type'],
    format: ctx.route.answer.format,
    callerNameField: ctx.route.answer.callerName,
  });
  if (!parsed.ok) return { outcome: 'malformed', reason: parsed.reason };
  return decideAnswer(parsed.answer, ctx);
}

export function decideAnswer(answer: RouteAnswer, ctx: DecideContext): Decision {
  if (answer.status === 'error') return { outcome: 'status-error', reason: 'the API answered status: error', answer };
  const result = answer.result;
  if (result === undefined) return { outcome: 'unknown-result', reason: 'no result', answer };
  if (Object.hasOwn(ctx.route.results, result)) {
    return { outcome: 'routed', destination: ctx.route.results[result]!, reason: `result ${result} is a configured code`, answer, mapped: true };
  }
  const key = result.toLowerCase();
  const kind = Object.hasOwn(RESULT_KINDS, key) ? RESULT_KINDS[key as keyof typeof RESULT_KINDS] : undefined;
  if (!kind) return { outcome: 'unknown-result', reason: `result "${result.slice(0, 40)}" is neither a destination kind nor a configured code`, answer };

  const name = answer.redirect;
  const unknown = (why: string): Decision => ({ outcome: 'unknown-destination', reason: why, answer });
  if (kind === 'hangup') return { outcome: 'routed', destination: { kind }, reason: 'hangup', answer };
  if (kind === 'interactivemenu') {
    if (name === undefined) return { outcome: 'routed', destination: { kind }, reason: 'ask the same integration again', answer };
    if (!Object.hasOwn(ctx.routing.integrations, name)) return unknown(`no integration "${name.slice(0, 40)}"`);
    return { outcome: 'routed', destination: { kind, name } as Destination, reason: `integration ${name}`, answer };
  }
  if (name === undefined) return unknown(`${result} without a redirect`);
  if ((DIALPLAN_KINDS as readonly string[]).includes(kind)) {
    if (kind === 'dial') {
      const dial = ctx.destinations.dial;
      if (!dial) return unknown('no destinations.dial is configured');
      dial.allow.lastIndex = 0;
      if (!dial.allow.test(name)) return unknown(`"${name.slice(0, 40)}" is not a number this service may dial`);
    } else {
      const place = ctx.destinations[kind as 'queue' | 'extension' | 'voicemail'];
      if (!DIALPLAN_NAME.test(name)) return unknown(`"${name.slice(0, 40)}" is not a usable ${kind} name`);
      if (place.names && !place.names.includes(name)) return unknown(`no ${kind} "${name}" among destinations.${kind}.names`);
    }
    return { outcome: 'routed', destination: { kind, name } as Destination, reason: `${kind} ${name}`, answer };
  }
  const section = NAMED_KINDS[kind as keyof typeof NAMED_KINDS];
  if (!Object.hasOwn(ctx.routing[section], name)) return unknown(`no ${kind} "${name.slice(0, 40)}" under routing.${section}`);
  return { outcome: 'routed', destination: { kind, name } as Destination, reason: `${kind} ${name}`, answer };
}
