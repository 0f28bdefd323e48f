import type { CountryCode } from 'libphonenumber-js';
import type { Dispatcher } from 'undici';
import type { DestinationsConfig, RoutingConfig } from '../routing/config.js';
import type { RouteLog } from '../routing/history.js';
import type { OutboxMessage } from '../sms/outbox.js';

/** What steps may use from the running service; kept narrow so each step is testable alone. */
export interface StepServices {
  tts: Speaker;
  sms: SmsSink;
  /** Inline hooks (the `hook` step); absent where no hooks are wired. */
  hooks?: InlineHooks;
  /** Dynamic routing (the `route` step and the destinations its answers name). */
  routing?: RoutingServices;
}

export interface RoutingServices {
  readonly routing: RoutingConfig;
  readonly destinations: DestinationsConfig;
  /** tts.language: what route steps speak in when they name no language. */
  readonly defaultLanguage: string;
  /** Values (from the environment) that must not reach the routing log. */
  readonly secrets: readonly string[];
  readonly log: Pick<RouteLog, 'record'>;
  /** Connection pool for the customer's API; defaults to the shared one. */
  readonly dispatcher?: Dispatcher;
}

export interface InlineHooks {
  runInline(
    name: string,
    ctx: { callId: string; vars: Readonly<Record<string, string>>; signal?: AbortSignal },
  ): Promise<{ status: 'ok' | 'failed' | 'skipped'; reason: string; attempts: number; extracted: Record<string, string>; durationMs: number }>;
}

export interface Speaker {
  /** Synthesises (or finds in the cache) and returns the media URI Asterisk plays. */
  speak(text: string, opts: { language?: string; voice?: string }): Promise<string>;
}

export type NewSms = OutboxMessage;

export interface SmsSink {
  readonly templates: Readonly<Record<string, string>>;
  readonly defaultCountry?: CountryCode;
  /**
   * Durable once this returns. With `once`, a second accept for the same key in the same call
   * writes nothing. Messages the limits refuse are recorded as blocked and listed in `blocked`.
   */
  accept(
    messages: NewSms[],
    once?: { callId: string; key: string },
  ): { duplicate: boolean; ids: string[]; blocked: Array<{ to: string; reason: string }> };
  /** Whether an accept with this once-key already succeeded. */
  hasOnce(callId: string, key: string): boolean;
  recordSkipped(entry: { callId: string; description: string; provider: string; to?: string; reason: string; sender?: string }): void;
}
