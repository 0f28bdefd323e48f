/**
 * The ARI events this service reacts to, typed after the Asterisk 22 ARI data model
 * (only the fields we read). The port hands out these plain objects, never ari-client instances.
 */
export interface AriChannel {
  id: string;
  name: string;
  state: string;
  caller: { name: string; number: string };
  connected: { name: string; number: string };
  dialplan: { context: string; exten: string; priority: number; app_name?: string; app_data?: string };
  language?: string;
  creationtime?: string;
  channelvars?: Record<string, string>;
}

export interface AriPlayback {
  id: string;
  media_uri: string;
  target_uri: string;
  state: 'queued' | 'playing' | 'continuing' | 'done' | 'failed' | 'cancelled';
}

interface Base<T extends string> {
  type: T;
  application: string;
  timestamp: string;
}

export interface StasisStart extends Base<'StasisStart'> { channel: AriChannel; args: string[]; replace_channel?: AriChannel }
export interface StasisEnd extends Base<'StasisEnd'> { channel: AriChannel }
export interface ChannelDtmfReceived extends Base<'ChannelDtmfReceived'> { channel: AriChannel; digit: string; duration_ms: number }
export interface ChannelHangupRequest extends Base<'ChannelHangupRequest'> { channel: AriChannel; cause?: number }
export interface ChannelDestroyed extends Base<'ChannelDestroyed'> { channel: AriChannel; cause: number; cause_txt: string }
export interface ChannelStateChange extends Base<'ChannelStateChange'> { channel: AriChannel }
export interface PlaybackStarted extends Base<'PlaybackStarted'> { playback: AriPlayback }
export interface PlaybackFinished extends Base<'PlaybackFinished'> { playback: AriPlayback }

export type ChannelEvent = StasisEnd | ChannelDtmfReceived | ChannelHangupRequest | ChannelDestroyed | ChannelStateChange | PlaybackStarted | PlaybackFinished;
export type AriEvent = StasisStart | ChannelEvent;
export type ChannelEventType = ChannelEvent['type'];
export type EventOf<T extends ChannelEventType> = Extract<ChannelEvent, { type: T }>;

/**
 * Every event type the service reads. Asterisk is asked to send only these (an application event
 * filter): without it, each variable the service sets comes back as a ChannelVarset, among others.
 * A Record, so a type added to AriEvent must be added here too.
 */
const HANDLED: Record<AriEvent['type'], true> = {
  StasisStart: true,
  StasisEnd: true,
  ChannelDtmfReceived: true,
  ChannelHangupRequest: true,
  ChannelDestroyed: true,
  ChannelStateChange: true,
  PlaybackStarted: true,
  PlaybackFinished: true,
};
export const HANDLED_EVENT_TYPES = Object.keys(HANDLED) as Array<AriEvent['type']>;

/**
 * What the filter lets through: the events we read, and the answers to REST requests sent over
 * the WebSocket (ari-ws-rest.ts), which Asterisk filters like events.
 */
export const ALLOWED_EVENT_TYPES: readonly string[] = [...HANDLED_EVENT_TYPES, 'RESTResponse'];

/** The channel an event belongs to: playbacks name theirs in target_uri ("channel:<id>"). */
export function channelIdOf(ev: AriEvent): string | undefined {
  if ('channel' in ev) return ev.channel.id;
  if ('playback' in ev && ev.playback.target_uri.startsWith('channel:')) return ev.playback.target_uri.slice('channel:'.length);
  return undefined;
}
