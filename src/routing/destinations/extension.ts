import { dialplanKind } from './dialplan.js';

/** `extensions` is the seed's word for it. */
export const extension = dialplanKind('extension', ['extensions', 'extension'], 'ext-{name}');
