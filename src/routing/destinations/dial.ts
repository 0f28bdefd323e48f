import type { StepResult } from '../../calls/step.js';
import { render } from '../../template.js';
import { describeDestination, type Destination } from '../config.js';
import type { RouteRun, Scope } from '../router.js';
import { handOff } from './dialplan.js';

/**
 * `dynamic` and `dial`: an outside number through the admin's dial string (PJSIP/{number}@trunk).
 * The number was checked against destinations.dial.allow, so it cannot carry Dial() options or a
 * second channel; the dialplan runs Dial(${CA_DIAL},${CA_DIAL_TIMEOUT}).
 */
export async function dial(dest: Extract<Destination, { kind: 'dial' }>, run: RouteRun, scope: Scope): Promise<StepResult> {
  const d = run.rs.destinations.dial;
  if (!d) throw new Error('dial destination without destinations.dial');
  d.allow.lastIndex = 0;
  if (!d.allow.test(dest.name)) {
    run.call.log.warn({ step: scope.where, number: dest.name.length }, 'number refused by destinations.dial.allow');
    return run.fallback(scope, 'unknown-destination');
  }
  const dialString = render(d.dialString, { number: dest.name, name: dest.name }).text;
  const target = { context: d.context, extension: render(d.exten, { number: dest.name, name: dest.name }).text, priority: 1 };
  // the dialplan only sees the dial string: the number is named here
  return handOff(run, scope, dest, target, { CA_DEST: describeDestination(dest), CA_DIAL: dialString, CA_DIAL_TIMEOUT: String(Math.ceil(d.timeout / 1000)) });
}
