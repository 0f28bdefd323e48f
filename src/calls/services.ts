import type { CountryCode } from 'libphonenumber-js';

/**
 * What steps may use from the running service; kept narrow so each step is testable alone.
 *
 * The kernel declares what more than one feature relies on (speech, SMS: the sms step and the
 * routing `sms` destination both send). A feature whose steps need a service of their own adds it
 * to this interface from its own folder (TypeScript module augmentation, e.g. `routing` in
 * routing/services.ts), so the kernel never imports a feature and app/ wires each one.
 */
export interface StepServices {
  tts: Speaker;
  sms: SmsSink;
}

export interface Speaker {
  /** Synthesises (or finds in the cache) and returns the media URI Asterisk plays. */
  speak(text: string, opts: { language?: string; voice?: string }): Promise<string>;
}

/** One SMS as a step hands it over; the outbox owns it from then on. */
export interface NewSms {
  callId: string;
  /** The SMS step's description (S1), by which history is filtered. */
  description: string;
  provider: string;
  to: string;
  text: string;
  sender?: string;
  /** Epoch ms before which it is not sent (S3 delay). */
  notBefore?: number;
  /** Kept in the history beside the message, e.g. why a fallback text was used. */
  note?: string;
}

export interface SmsSink {
  readonly templates: Readonly<Record<string, string>>;
  readonly defaultCountry?: CountryCode;
  /**
   * Durable once this resolves. With `once`, a second accept for the same key in the same call
   * writes nothing. Messages the limits refuse are recorded as blocked and listed in `blocked`.
   */
  accept(
    messages: NewSms[],
    once?: { callId: string; key: string },
  ): Promise<{ duplicate: boolean; ids: string[]; blocked: Array<{ to: string; reason: string }> }>;
  /** Whether an accept with this once-key already succeeded. */
  hasOnce(callId: string, key: string): Promise<boolean>;
  recordSkipped(entry: { callId: string; description: string; provider: string; to?: string; reason: string; sender?: string }): Promise<void>;
}
