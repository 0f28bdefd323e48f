import { render } from '../../template.js';
import type { DestinationsConfig } from '../config.js';
import { handOff } from './dialplan.js';
import { defineDestination, type Named } from './kind.js';

/**
 * `dynamic` and `dial`: an outside number through the admin's dial string (PJSIP/{number}@trunk).
 * The number was checked against destinations.dial.allow, so it cannot carry Dial() options or a
 * second channel; the dialplan runs Dial(${CA_DIAL},${CA_DIAL_TIMEOUT}).
 */
export const dial = defineDestination({
  kind: 'dial',
  settings: { at: 'destinations.dial' },
  reach(dest: Named<'dial'>, run, scope, d: DestinationsConfig['dial']) {
    if (!d) throw new Error('dial destination without destinations.dial');
    d.allow.lastIndex = 0;
    if (!d.allow.test(dest.name)) {
      run.call.log.warn({ step: scope.where, number: dest.name.length }, 'number refused by destinations.dial.allow');
      return run.fallback(scope, 'unknown-destination');
    }
    const dialString = render(d.dialString, { number: dest.name, name: dest.name }).text;
    const target = { context: d.context, extension: render(d.exten, { number: dest.name, name: dest.name }).text, priority: 1 };
    // the dialplan only sees the dial string: the number is named here
    return handOff(run, scope, dest, target, { CA_DEST: run.describe(dest), CA_DIAL: dialString, CA_DIAL_TIMEOUT: String(Math.ceil(d.timeout / 1000)) });
  },
});
