import { dialplanKind } from './dialplan.js';

export const extension = dialplanKind('extension');
