import type { StepResult } from '../../calls/step.js';
import type { Destination } from '../config.js';
import type { RouteRun, Scope } from '../router.js';
import { isOpen } from '../schedule.js';

export function timecondition(dest: Extract<Destination, { kind: 'timecondition' }>, run: RouteRun, scope: Scope): Promise<StepResult> {
  const t = run.rs.routing.timeconditions[dest.name];
  const s = t ? run.rs.routing.schedules[t.schedule] : undefined;
  if (!t || !s) return run.fallback(scope, 'unknown-destination');
  const open = isOpen(s);
  run.call.log.info({ step: scope.where, timecondition: dest.name, open }, 'time condition');
  return run.go(open ? t.open : t.closed, scope);
}
