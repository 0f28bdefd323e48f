import { dialplanKind } from './dialplan.js';

export const voicemail = dialplanKind('voicemail', ['voicemail'], 'vm-{name}');
