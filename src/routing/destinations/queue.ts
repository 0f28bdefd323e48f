import { dialplanKind } from './dialplan.js';

export const queue = dialplanKind('queue', ['queue'], 'queue-{name}');
