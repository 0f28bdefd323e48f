import { destinationsSchema, DESTINATIONS_DEFAULTS, ROUTING_DEFAULTS, routingSchema } from './config.js';

/** The config sections dynamic routing owns (app/config-schema.ts merges them into the root). */
export const ROUTING_SECTIONS = {
  routing: routingSchema.default(ROUTING_DEFAULTS).describe('what a routing API answer may name: announcements, menus, schedules… (docs/routing.md)'),
  destinations: destinationsSchema.default(DESTINATIONS_DEFAULTS).describe('how queue, extension, voicemail and dial destinations are reached in the dialplan'),
};
