import { z } from 'zod';
import { isOpen } from '../schedule.js';
import { defineDestination, namedEntries, type SchemaKit } from './kind.js';

const timeconditionSchema = (kit: SchemaKit) => z.object({ schedule: z.string().min(1), open: kit.destination, closed: kit.destination }).strict();

/** One of two destinations, by whether a schedule of routing.schedules is open now. */
export const timecondition = defineDestination({
  ...namedEntries('timecondition', 'timeconditions', timeconditionSchema),
  checkSettings(timeconditions, c) {
    for (const [name, t] of Object.entries(timeconditions)) {
      c.schedule(t.schedule, [name, 'schedule']);
      c.destination(t.open, [name, 'open']);
      c.destination(t.closed, [name, 'closed']);
    }
  },
  loops: true,
  reach(dest, run, scope, timeconditions) {
    const t = timeconditions[dest.name];
    const s = t ? run.schedules[t.schedule] : undefined;
    if (!t || !s) return run.fallback(scope, 'unknown-destination');
    const open = isOpen(s);
    run.call.log.info({ step: scope.where, timecondition: dest.name, open }, 'time condition');
    return run.go(open ? t.open : t.closed, scope);
  },
});
