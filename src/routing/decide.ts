import { classify, type AttemptResult } from '../http/failure.js';
import { parseAnswer, type RouteAnswer } from './answer.js';
import type { Outcome } from './history.js';
import type { DestinationsConfig, RoutingConfig } from './config.js';
import { decideResult } from './destinations/index.js';
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
  routing: RoutingConfig;
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
  const verdict = decideResult({ ...answer, result }, ctx);
  if (!verdict) return { outcome: 'unknown-result', reason: `result "${result.slice(0, 40)}" is neither a destination kind nor a configured code`, answer };
  return { ...verdict, answer };
}
