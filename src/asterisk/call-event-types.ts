/**
 * Call-lifecycle events (CA1): what hooks subscribe to. One stream per call, keyed by Asterisk's
 * linkedid, which every channel of the call shares (the caller's leg, the agent's leg, Local
 * pairs), so "the call" is the same thing for AMI events, ARI stages, hooks and the SMS history.
 */

export const CALL_EVENT_KINDS = [
  'call.start',
  'call.answer',
  'call.end',
  'queue.join',
  'queue.key-exit',
  'queue.abandon',
  'stage.entered',
  'step.skipped',
  'sms.delivered',
  'sms.failed',
] as const;

export type CallEventKind = (typeof CALL_EVENT_KINDS)[number];

export interface CallEvent {
  kind: CallEventKind;
  /** Asterisk's linkedid. */
  callId: string;
  /**
   * Names this occurrence. Two observations of one fact (AMI and ARI both seeing a key exit, the
   * same stage adopted again after a restart) get the same key, so consumers can drop repeats.
   */
  key: string;
  /** Epoch ms when the service saw it. */
  at: number;
  /** Merge fields: the call's (caller, called…) and this event's own (queue, cause…). */
  vars: Record<string, string>;
}

/** The fields of BASE_FIELDS that hold a number as dialled; each also comes as `<name>.e164` and `<name>.national`. */
export const NUMBER_FIELDS = ['caller', 'TEL', 'called', 'did'] as const;

/** Merge fields every event carries. */
export const BASE_FIELDS = [
  'callId',
  'caller',
  'TEL',
  'callerName',
  'called',
  'did',
  'channelId',
  'event',
  'time',
  ...NUMBER_FIELDS.flatMap((n) => [`${n}.e164`, `${n}.national`] as const),
] as const;

/** What a delivery receipt tells of one SMS (the SMS history's fields, under names no hook extracts into). */
const SMS_FIELDS = ['smsId', 'smsTo', 'smsProvider', 'smsStatus', 'smsStatusAt', 'smsError', 'smsDescription'] as const;

/**
 * The event's own merge fields, beside BASE_FIELDS. `stage.entered` also carries every
 * `key=value` argument of the Stasis() line, which only the dialplan knows.
 */
export const EVENT_FIELDS: Record<CallEventKind, readonly string[]> = {
  'call.start': ['context'],
  'call.answer': ['answeredBy', 'agent', 'agentName', 'agentChannel', 'answerSeconds'],
  'call.end': ['duration', 'talkSeconds', 'answered', 'cause', 'causeText', 'agent', 'agentName', 'agentChannel', 'firstAgent', 'agents'],
  'queue.join': ['queue', 'position'],
  'queue.key-exit': ['queue', 'key', 'position', 'wait'],
  'queue.abandon': ['queue', 'position', 'originalPosition', 'wait'],
  'stage.entered': ['stage'],
  'step.skipped': ['stage', 'skippedStep', 'skipReason'],
  'sms.delivered': SMS_FIELDS,
  'sms.failed': SMS_FIELDS,
};
