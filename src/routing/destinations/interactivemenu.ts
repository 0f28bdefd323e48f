import type { Destination } from '../settings.js';
import { checkEntry, defineDestination, entries, nowhere, readName, routed } from './kind.js';

const AT = 'routing.integrations';

interface InteractiveMenu extends Destination {
  readonly kind: 'interactivemenu';
  /** no name: ask the same integration again */
  readonly name?: string;
}

/**
 * "Entegrasyon": ask an API again with new digits — the named integration, or the same one. The
 * spoken data of the answer that led here is the prompt, so the keys are gathered right away.
 */
export const interactivemenu = defineDestination({
  kind: 'interactivemenu',
  aliases: ['integration'],
  read(value, key): InteractiveMenu | string {
    if (value === null || (typeof value === 'object' && Object.keys(value).length === 0)) return { kind: 'interactivemenu' };
    return readName('interactivemenu', value, key);
  },
  settings: { at: AT, schema: (kit) => entries(kit.route).describe('route settings an interactivemenu answer may name') },
  check: (dest, integrations) => checkEntry(dest, integrations, AT),
  checkSettings(integrations, c) {
    for (const [name, route] of Object.entries(integrations)) c.route(route, [name]);
  },
  answer: {
    results: ['interactivemenu'],
    decide(answer, integrations) {
      const name = answer.redirect;
      if (name === undefined) return routed({ kind: 'interactivemenu' }, 'ask the same integration again');
      if (!Object.hasOwn(integrations, name)) return nowhere(`no integration "${name.slice(0, 40)}"`);
      return routed({ kind: 'interactivemenu', name }, `integration ${name}`);
    },
  },
  loops: true,
  dataIsPrompt: true,
  describe: (dest) => (dest.name ? `interactivemenu:${dest.name}` : 'interactivemenu'),
  reach(dest, run, scope, integrations) {
    if (dest.name === undefined) return run.integration(scope, { gatherFirst: true });
    const route = integrations[dest.name];
    if (!route) return run.fallback(scope, 'unknown-destination');
    return run.integration({ route, where: `routing.integrations.${dest.name}`, integration: dest.name }, { gatherFirst: true });
  },
});
