import type { ContinueTarget } from '../../asterisk/ari.js';
import type { StepResult } from '../../calls/step.js';
import { render } from '../../template.js';
import type { DestinationsConfig } from '../config.js';
import type { Destination } from '../settings.js';
import type { Run, Scope } from '../run.js';
import { defineDestination, type Named } from './kind.js';

/**
 * Queue, extension, voicemail and dial are reached by handing the call to the dialplan at the
 * place `destinations:` describes (shipped as [call-actions-dest] in dialplan/). The dialplan there
 * knows what a failed Queue() or Dial() means; CA_DEST_FALLBACK tells it where the route's
 * fallback is, so a queue the API names but Asterisk does not know still ends somewhere.
 * The dialplan names the destination itself (CA_DEST) and takes CA_DEST_FALLBACK for this
 * hand-over only, so a call routed with nothing else to say costs one ARI request: the continue.
 */

type Place = DestinationsConfig['queue'];

export function placeOf(p: Place, name: string): ContinueTarget {
  return { context: p.context, extension: render(p.exten, { name }).text, priority: 1 };
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

/** A kind that is a named place in the dialplan and nothing more: queue, extension, voicemail. */
export function dialplanKind<K extends string>(kind: K) {
  return defineDestination({
    kind,
    settings: { at: `destinations.${kind}` as const },
    place: (dest: Named<K>, place: Place) => placeOf(place, dest.name),
    reach: (dest: Named<K>, run, scope, place: Place) => handOff(run, scope, dest, placeOf(place, dest.name)),
  });
}
