import type { Step } from '../../calls/step.js';
import { sms as smsStep } from '../../sms/step.js';
import type { RoutingConfig } from '../config.js';
import { defineDestination, type Named } from './kind.js';

/**
 * The seed's "interactive SMS": the caller is sent a text by the SMS step's own machinery (the
 * durable outbox, limits, once-per-call, history), then the call goes on: to `then`, or to the
 * stage's next step. An SMS that cannot be queued is logged and does not hold the caller.
 */
const steps = new WeakMap<object, Step>();

export const sms = defineDestination({
  kind: 'sms',
  settings: { at: 'routing.sms' },
  loops: true,
  async reach(dest: Named<'sms'>, run, scope, entries: RoutingConfig['sms']) {
    const entry = entries[dest.name];
    if (!entry) return run.fallback(scope, 'unknown-destination');
    let step = steps.get(entry);
    if (!step) steps.set(entry, (step = smsStep.create(entry.step as never, `routing.sms.${dest.name}`)));
    try {
      const r = await step.run(run.call, run.services);
      if (r === 'handed-off' || !run.call.active) return 'handed-off';
    } catch (e) {
      run.call.log.error({ step: scope.where, sms: dest.name, err: (e as Error).message }, 'SMS destination failed; the call goes on');
    }
    if (entry.then) return run.go(entry.then, scope);
    run.left(scope, `sms:${dest.name} → next step`);
    return 'next';
  },
});
