import type { RoutingConfig } from '../config.js';
import { isOpen } from '../schedule.js';
import { defineDestination, type Named } from './kind.js';

export const timecondition = defineDestination({
  kind: 'timecondition',
  settings: { at: 'routing.timeconditions' },
  loops: true,
  reach(dest: Named<'timecondition'>, run, scope, timeconditions: RoutingConfig['timeconditions']) {
    const t = timeconditions[dest.name];
    const s = t ? run.schedules[t.schedule] : undefined;
    if (!t || !s) return run.fallback(scope, 'unknown-destination');
    const open = isOpen(s);
    run.call.log.info({ step: scope.where, timecondition: dest.name, open }, 'time condition');
    return run.go(open ? t.open : t.closed, scope);
  },
});
