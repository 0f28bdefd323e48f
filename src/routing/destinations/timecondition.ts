import { z } from 'zod';
import { isOpen } from '../schedule.js';
import { checkEntry, decideEntry, defineDestination, entries, readName, type Named, type SchemaKit } from './kind.js';

const AT = 'routing.timeconditions';

const timeconditionSchema = (kit: SchemaKit) => z.object({ schedule: z.string().min(1), open: kit.destination, closed: kit.destination }).strict();
type TimeConditions = Record<string, z.output<ReturnType<typeof timeconditionSchema>>>;

/** One of two destinations, by whether a schedule of routing.schedules is open now. */
export const timecondition = defineDestination({
  kind: 'timecondition',
  read: (value, key) => readName('timecondition', value, key),
  settings: { at: AT, schema: (kit) => entries(timeconditionSchema(kit)) },
  check: (dest, timeconditions: TimeConditions) => checkEntry(dest, timeconditions, AT),
  checkSettings(timeconditions: TimeConditions, c) {
    for (const [name, t] of Object.entries(timeconditions)) {
      c.schedule(t.schedule, [name, 'schedule']);
      c.destination(t.open, [name, 'open']);
      c.destination(t.closed, [name, 'closed']);
    }
  },
  answer: { results: ['timecondition'], decide: (answer, timeconditions: TimeConditions) => decideEntry('timecondition', answer, timeconditions, AT) },
  loops: true,
  reach(dest: Named<'timecondition'>, run, scope, timeconditions: TimeConditions) {
    const t = timeconditions[dest.name];
    const s = t ? run.schedules[t.schedule] : undefined;
    if (!t || !s) return run.fallback(scope, 'unknown-destination');
    const open = isOpen(s);
    run.call.log.info({ step: scope.where, timecondition: dest.name, open }, 'time condition');
    return run.go(open ? t.open : t.closed, scope);
  },
});
