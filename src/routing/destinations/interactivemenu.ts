import type { StepResult } from '../../calls/step.js';
import type { Destination } from '../config.js';
import type { RouteRun, Scope } from '../router.js';

/**
 * "Entegrasyon": ask an API again with new digits — the named integration, or the same one. The
 * spoken data of the answer that led here is the prompt, so the keys are gathered right away.
 */
export function interactivemenu(dest: Extract<Destination, { kind: 'interactivemenu' }>, run: RouteRun, scope: Scope): Promise<StepResult> {
  if (dest.name === undefined) return run.integration(scope, { gatherFirst: true });
  const route = run.rs.routing.integrations[dest.name];
  if (!route) return run.fallback(scope, 'unknown-destination');
  return run.integration({ route, where: `routing.integrations.${dest.name}`, integration: dest.name }, { gatherFirst: true });
}
