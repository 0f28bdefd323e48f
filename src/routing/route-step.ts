import { routeSchema } from './config.js';
import type { RouteConfig } from './settings.js';
import { RouteRun } from './router.js';
import { defineStep, Step, type StepResult } from '../calls/step.js';
import type { CallSession } from '../calls/session.js';
import type { StepServices } from '../calls/services.js';

/**
 * Netsantral's custom integration (R1–R7): send the call's data to the customer's URL, speak the
 * answer's `data`, and route the caller where `result` + `redirect` say — or to the fallback when
 * the API is slow, down, or answers anything else.
 */
class Route extends Step<RouteConfig> {
  readonly kind = 'route';

  async run(call: CallSession, services: StepServices): Promise<StepResult> {
    if (!services.routing) throw new Error(`${this.where}: routing is not available in this service`);
    const run = new RouteRun(call, services, services.routing);
    try {
      const r = await run.integration({ route: this.config, where: this.where });
      return r === 'next' && call.active ? 'next' : 'handed-off';
    } finally {
      run.flush();
    }
  }
}

export const route = defineStep({
  kind: 'route',
  description: "Ask the customer's API where this call goes (JSON, XML, form or query), speak its answer, and route the caller; the fallback when it fails.",
  schema: routeSchema,
  create: (config, where) => new Route(config, where),
});
