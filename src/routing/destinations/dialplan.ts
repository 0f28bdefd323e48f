import type { ContinueTarget } from '../../asterisk/ari.js';
import type { StepResult } from '../../calls/step.js';
import { render } from '../../template.js';
import { describeDestination, type Destination, type DestinationsConfig } from '../config.js';
import type { RouteRun, Scope } from '../router.js';

/**
 * Queue, extension, voicemail and dial are reached by handing the call to the dialplan at the
 * place `destinations:` describes (shipped as [call-actions-dest] in dialplan/). The dialplan there
 * knows what a failed Queue() or Dial() means; CA_DEST_FALLBACK tells it where the route's
 * fallback is, so a queue the API names but Asterisk does not know still ends somewhere.
 * The dialplan names the destination itself (CA_DEST) and takes CA_DEST_FALLBACK for this
 * hand-over only, so a call routed with nothing else to say costs one ARI request: the continue.
 */

export function placeOf(kind: 'queue' | 'extension' | 'voicemail', name: string, d: DestinationsConfig): ContinueTarget {
  const p = d[kind];
  return { context: p.context, extension: render(p.exten, { name }).text, priority: 1 };
}

/** "context,exten,1" for Goto(), when the route's fallback is a plain dialplan place. */
function fallbackPlace(run: RouteRun, scope: Scope, dest: Destination): string {
  const f = scope.route.fallback;
  if (!f || describeDestination(f) === describeDestination(dest)) return '';
  if (f.kind === 'queue' || f.kind === 'extension' || f.kind === 'voicemail') {
    const t = placeOf(f.kind, f.name, run.rs.destinations);
    return `${t.context},${t.extension},1`;
  }
  if (f.kind === 'continue' && f.target.context && f.target.extension) return `${f.target.context},${f.target.extension},${f.target.priority ?? 1}`;
  return '';
}

export async function handOff(run: RouteRun, scope: Scope, dest: Destination, target: ContinueTarget, vars: Record<string, string> = {}): Promise<StepResult> {
  const { channel } = run.call;
  const fallback = fallbackPlace(run, scope, dest);
  const all = fallback ? { ...vars, CA_DEST_FALLBACK: fallback } : vars;
  if (Object.keys(all).length > 0) await channel.setVars(all);
  await channel.continueInDialplan(target);
  run.left(scope, describeDestination(dest));
  return 'handed-off';
}
