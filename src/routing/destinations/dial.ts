import { z } from 'zod';
import { regex, timeout } from '../../config/types.js';
import { LinearRegex } from '../../config/regex.js';
import { render } from '../../template.js';
import { contextName, handOff, placeTemplate, readDialplanName } from './dialplan.js';
import { defineDestination, nowhere, routed, withoutRedirect, type Named } from './kind.js';

/**
 * `dynamic` and `dial`: an outside number through the admin's dial string (PJSIP/{number}@trunk).
 * The number was checked against destinations.dial.allow, so it cannot carry Dial() options or a
 * second channel; the dialplan runs Dial(${CA_DIAL},${CA_DIAL_TIMEOUT}).
 */

const dialSchema = z
  .object({
    dialString: z.string().min(1).describe('e.g. PJSIP/{number}@trunk; set as CA_DIAL for the dialplan'),
    context: contextName.default('call-actions-dest'),
    exten: placeTemplate.default('dial'),
    timeout: timeout.default(60_000),
    allow: regex.default(() => LinearRegex.parse('/^\\+?[0-9]{2,20}$/')).describe('numbers an API answer may dial'),
  })
  .strict();
/** undefined: this service dials no numbers */
type DialSettings = z.output<typeof dialSchema> | undefined;

export const dial = defineDestination({
  kind: 'dial',
  read: (value, key) => readDialplanName('dial', value, key, '"+902121234567"'),
  settings: { at: 'destinations.dial', schema: () => dialSchema.optional() },
  check: (_dest, d: DialSettings) => (d ? undefined : 'dial needs destinations.dial with a dialString'),
  answer: {
    results: ['dynamic', 'dial'],
    decide(answer, d: DialSettings) {
      const name = answer.redirect;
      if (name === undefined) return withoutRedirect(answer);
      if (!d) return nowhere('no destinations.dial is configured');
      if (!d.allow.test(name)) return nowhere(`"${name.slice(0, 40)}" is not a number this service may dial`);
      return routed({ kind: 'dial', name }, `dial ${name}`);
    },
  },
  reach(dest: Named<'dial'>, run, scope, d: DialSettings) {
    if (!d) throw new Error('dial destination without destinations.dial');
    // checked again: a dial that the file names (results:, fallback:) was never decided
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
