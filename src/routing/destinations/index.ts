import type { ContinueTarget } from '../../asterisk/ari.js';
import type { StepResult } from '../../calls/step.js';
import type { Destination } from '../settings.js';
import type { Run, Scope } from '../run.js';
import { announcement } from './announcement.js';
import { continueTo } from './continue.js';
import { dial } from './dial.js';
import { extension } from './extension.js';
import { hangup } from './hangup.js';
import { interactivemenu } from './interactivemenu.js';
import type { DestinationKind } from './kind.js';
import { menu } from './menu.js';
import { queue } from './queue.js';
import { sms } from './sms.js';
import { timecondition } from './timecondition.js';
import { voicemail } from './voicemail.js';

/**
 * Every destination kind, one line each (after jambonz's lib/tasks). Nothing else in routing/
 * names a kind: the config, the decision and the router ask this table.
 */
export const DESTINATION_KINDS = [dial, announcement, menu, timecondition, sms, queue, extension, voicemail, hangup, interactivemenu, continueTo] as const;

/** A kind as the table uses it: its settings are whatever its section holds. */
type AnyKind = DestinationKind<Destination, unknown>;

const byKind = new Map<string, AnyKind>((DESTINATION_KINDS as readonly AnyKind[]).map((k) => [k.kind, k]));

/** Where the kinds' settings are read from: the routing: and destinations: sections. */
export interface KindSettings {
  readonly routing: object;
  readonly destinations: object;
}

function kindOf(dest: Destination): AnyKind {
  const k = byKind.get(dest.kind);
  // a destination is only ever made by the config or a decision, both from this table
  if (!k) throw new Error(`no destination kind "${dest.kind}"`);
  return k;
}

function settingsOf(k: AnyKind, config: KindSettings): unknown {
  if (!k.settings) return undefined;
  const [section, key] = k.settings.at.split('.') as ['routing' | 'destinations', string];
  return (config[section] as Record<string, unknown>)[key];
}

export function describeDestination(dest: Destination): string {
  return kindOf(dest).describe?.(dest) ?? `${dest.kind}:${(dest as { name?: string }).name}`;
}

export const loops = (dest: Destination): boolean => kindOf(dest).loops === true;

export const dataIsPrompt = (dest: Destination): boolean => kindOf(dest).dataIsPrompt === true;

export function destinationPlace(dest: Destination, config: KindSettings): ContinueTarget | undefined {
  const k = kindOf(dest);
  return k.place?.(dest, settingsOf(k, config));
}

export function reachDestination(dest: Destination, run: Run, scope: Scope, config: KindSettings): Promise<StepResult> {
  const k = kindOf(dest);
  return k.reach(dest, run, scope, settingsOf(k, config));
}
