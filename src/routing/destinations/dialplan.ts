import { z } from 'zod';
import type { ContinueTarget } from '../../asterisk/ari.js';
import type { StepResult } from '../../calls/step.js';
import { compileTemplate, type CompiledTemplate } from '../../template.js';
import type { RouteAnswer } from '../answer.js';
import type { Run, Scope } from '../run.js';
import type { Destination } from '../settings.js';
import { defineDestination, nowhere, readName, routed, withoutRedirect, type Named, type Verdict } from './kind.js';

/**
 * Queue, extension, voicemail and dial are reached by handing the call to the dialplan at the
 * place `destinations:` describes (shipped as [call-actions-dest] in dialplan/). The dialplan there
 * knows what a failed Queue() or Dial() means; CA_DEST_FALLBACK tells it where the route's
 * fallback is, so a queue the API names but Asterisk does not know still ends somewhere.
 * The dialplan names the destination itself (CA_DEST) and takes CA_DEST_FALLBACK for this
 * hand-over only, so a call routed with nothing else to say costs one ARI request: the continue.
 */

/**
 * A name that ends up inside a dialplan application's arguments (`Queue(${EXTEN:6})`): no comma,
 * bracket, `$`, `&` or `|`, so an API answer can never add options or a second target.
 */
export const DIALPLAN_NAME = /^[A-Za-z0-9_+][A-Za-z0-9_.+-]{0,63}$/;

export const contextName = z.string().min(1).regex(/^[A-Za-z0-9_-]+$/);
export const placeTemplate = z.string().min(1).regex(/^[A-Za-z0-9_{}.+-]+$/, 'letters, digits, _ . + - and {name}');

/** A name for the dialplan, refused in the file already when it could not reach Asterisk as one. */
export function readDialplanName<K extends string>(kind: K, value: unknown, key: string, example?: string): Named<K> | string {
  const dest = readName(kind, value, key, example);
  if (typeof dest === 'string' || DIALPLAN_NAME.test(dest.name)) return dest;
  return `"${dest.name}" is not a usable ${kind} name (letters, digits, _ . + -; at most 64)`;
}

const placeSchema = (exten: string) =>
  z
    .object({
      context: contextName.default('call-actions-dest'),
      exten: placeTemplate.default(exten).describe('{name} is the queue, extension or mailbox'),
      names: z.array(z.union([z.string(), z.number()]).transform(String)).optional().describe('if given, only these names are accepted from an API answer; another is an unknown destination'),
    })
    .strict()
    .default({ context: 'call-actions-dest', exten });
type Place = z.output<ReturnType<typeof placeSchema>>;

// A place's exten template is read once (a config's objects are not changed after load; a reload
// makes new ones), not searched for its fields again on every routed call.
const extens = new WeakMap<Place, CompiledTemplate>();

function placeOf(p: Place, name: string): ContinueTarget {
  let exten = extens.get(p);
  if (!exten) extens.set(p, (exten = compileTemplate(p.exten)));
  return { context: p.context, extension: exten({ name }).text, priority: 1 };
}

function decidePlace(kind: string, answer: RouteAnswer, place: Place): Verdict {
  const name = answer.redirect;
  if (name === undefined) return withoutRedirect(answer);
  if (!DIALPLAN_NAME.test(name)) return nowhere(`"${name.slice(0, 40)}" is not a usable ${kind} name`);
  if (place.names && !place.names.includes(name)) return nowhere(`no ${kind} "${name}" among destinations.${kind}.names`);
  return routed({ kind, name }, `${kind} ${name}`);
}

/** "context,exten,priority" for Goto(), when the route's fallback is a plain dialplan place. */
function fallbackPlace(run: Run, scope: Scope, dest: Destination): string {
  const f = scope.route.fallback;
  if (!f || run.describe(f) === run.describe(dest)) return '';
  const t = run.placeOf(f);
  return t ? `${t.context},${t.extension},${t.priority ?? 1}` : '';
}

export async function handOff(run: Run, scope: Scope, dest: Destination, target: ContinueTarget, vars: Record<string, string> = {}): Promise<StepResult> {
  const { channel } = run.call;
  const fallback = fallbackPlace(run, scope, dest);
  const all = fallback ? { ...vars, CA_DEST_FALLBACK: fallback } : vars;
  if (Object.keys(all).length > 0) await channel.setVars(all);
  await channel.continueInDialplan(target);
  run.left(scope, run.describe(dest));
  return 'handed-off';
}

/**
 * A kind that is a named place in the dialplan and nothing more (queue, extension, voicemail):
 * `destinations.<kind>` says where, with `exten` as the default; `results` are the words an
 * answer names it by.
 */
export function dialplanKind<K extends string>(kind: K, results: readonly string[], exten: string) {
  return defineDestination({
    kind,
    read: (value, key) => readDialplanName(kind, value, key),
    settings: { at: `destinations.${kind}` as const, schema: () => placeSchema(exten) },
    answer: { results, decide: (answer, place: Place) => decidePlace(kind, answer, place) },
    place: (dest: Named<K>, place: Place) => placeOf(place, dest.name),
    reach: (dest: Named<K>, run, scope, place: Place) => handOff(run, scope, dest, placeOf(place, dest.name)),
  });
}
