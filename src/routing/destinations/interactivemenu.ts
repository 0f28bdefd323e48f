import type { RoutingConfig } from '../config.js';
import type { Destination } from '../settings.js';
import { defineDestination } from './kind.js';

/** No name: ask the same integration again. */
interface InteractiveMenu extends Destination {
  readonly kind: 'interactivemenu';
  readonly name?: string;
}

/**
 * "Entegrasyon": ask an API again with new digits — the named integration, or the same one. The
 * spoken data of the answer that led here is the prompt, so the keys are gathered right away.
 */
export const interactivemenu = defineDestination({
  kind: 'interactivemenu',
  settings: { at: 'routing.integrations' },
  loops: true,
  dataIsPrompt: true,
  describe: (dest: InteractiveMenu) => (dest.name ? `interactivemenu:${dest.name}` : 'interactivemenu'),
  reach(dest: InteractiveMenu, run, scope, integrations: RoutingConfig['integrations']) {
    if (dest.name === undefined) return run.integration(scope, { gatherFirst: true });
    const route = integrations[dest.name];
    if (!route) return run.fallback(scope, 'unknown-destination');
    return run.integration({ route, where: `routing.integrations.${dest.name}`, integration: dest.name }, { gatherFirst: true });
  },
});
