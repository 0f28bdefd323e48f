import type { StepResult } from '../../calls/step.js';
import type { Destination } from '../config.js';
import type { RouteRun, Scope } from '../router.js';
import { announcement } from './announcement.js';
import { continueTo } from './continue.js';
import { dial } from './dial.js';
import { extension } from './extension.js';
import { hangup } from './hangup.js';
import { interactivemenu } from './interactivemenu.js';
import { menu } from './menu.js';
import { queue } from './queue.js';
import { sms } from './sms.js';
import { timecondition } from './timecondition.js';
import { voicemail } from './voicemail.js';

/** One module per destination kind (after jambonz's lib/tasks); this is the only switch over kinds. */
export function reachDestination(dest: Destination, run: RouteRun, scope: Scope): Promise<StepResult> {
  switch (dest.kind) {
    case 'queue':
      return queue(dest, run, scope);
    case 'extension':
      return extension(dest, run, scope);
    case 'voicemail':
      return voicemail(dest, run, scope);
    case 'dial':
      return dial(dest, run, scope);
    case 'announcement':
      return announcement(dest, run, scope);
    case 'menu':
      return menu(dest, run, scope);
    case 'timecondition':
      return timecondition(dest, run, scope);
    case 'sms':
      return sms(dest, run, scope);
    case 'interactivemenu':
      return interactivemenu(dest, run, scope);
    case 'hangup':
      return hangup(dest, run, scope);
    case 'continue':
      return continueTo(dest, run, scope);
  }
}
