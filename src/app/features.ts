import type { z } from 'zod';
import type { FeatureCommand } from '../calls/feature.js';
import { salesforceFeature } from '../crm/salesforce/index.js';
import { hooksFeature } from '../hooks/index.js';
import { routingFeature } from '../routing/index.js';
import { smsFeature } from '../sms/index.js';

/**
 * Every feature of the service, in the order they are built and started (stopped in reverse).
 * A new feature is its folder and one line here: its config sections, checks, steps, commands,
 * routes and health come with it. Each reads the config as it declares it; the service hands
 * every one the whole validated file, which has all their sections.
 */
export const FEATURES = [smsFeature, hooksFeature, routingFeature, salesforceFeature] as const;

type Intersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;

/** All features' config sections in one shape, typed, for the root schema. */
export const FEATURE_SECTIONS = Object.assign({}, ...FEATURES.map((f) => f.sections)) as Intersection<(typeof FEATURES)[number]['sections']>;

/** Every feature's `call-actions <command>`; each reads the config it declares, from the whole file. */
export const COMMANDS: ReadonlyArray<FeatureCommand<never>> = FEATURES.flatMap((f): ReadonlyArray<FeatureCommand<never>> => f.commands ?? []);
