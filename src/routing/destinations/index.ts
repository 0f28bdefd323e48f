import type { z } from 'zod';
import type { ContinueTarget } from '../../asterisk/ari.js';
import type { StepResult } from '../../calls/step.js';
import type { RouteAnswer } from '../answer.js';
import type { Run, Scope } from '../run.js';
import type { Destination } from '../settings.js';
import { announcement } from './announcement.js';
import { continueTo } from './continue.js';
import { dial } from './dial.js';
import { extension } from './extension.js';
import { hangup } from './hangup.js';
import { interactivemenu } from './interactivemenu.js';
import type { DestinationKind, SchemaKit, SettingsChecks, Verdict } from './kind.js';
import { menu } from './menu.js';
import { queue } from './queue.js';
import { sms } from './sms.js';
import { timecondition } from './timecondition.js';
import { voicemail } from './voicemail.js';

/**
 * Every destination kind, one line each (after jambonz's lib/tasks). Nothing else in routing/
 * names a kind: the config, the decision and the router ask this table. The order is the one
 * an error lists the kinds in.
 */
export const DESTINATION_KINDS = [dial, announcement, menu, timecondition, sms, queue, extension, voicemail, hangup, interactivemenu, continueTo] as const;

/** A kind as the table uses it: its settings are whatever its section holds. */
type AnyKind = DestinationKind<Destination, unknown>;

const KINDS: readonly AnyKind[] = DESTINATION_KINDS;
const byKind = new Map(KINDS.map((k) => [k.kind, k]));
const byResult = new Map(KINDS.flatMap((k) => (k.answer?.results ?? []).map((word) => [word, k] as const)));

/** The keys an admin writes a destination with, as an error lists them: every kind, then the aliases. */
export const DESTINATION_KEYS: readonly string[] = [...KINDS.map((k) => k.kind), ...KINDS.flatMap((k) => k.aliases ?? [])];
// an answer's words are accepted in the file too (the seed's `dynamic`, `extensions`), though not listed
const byKey = new Map<string, AnyKind>([...byResult, ...KINDS.flatMap((k) => [k.kind, ...(k.aliases ?? [])].map((key) => [key, k] as const))]);

/** The parts of the file the kinds' settings are in. */
export interface KindSettings {
  readonly routing: object;
  readonly destinations: object;
}

function kindOf(dest: Destination): AnyKind {
  const k = byKind.get(dest.kind);
  // a destination is only ever made by a kind of this table (read from the file, or decided)
  if (!k) throw new Error(`no destination kind "${dest.kind}"`);
  return k;
}

function sectionOf(k: AnyKind): [section: keyof KindSettings, key: string] | undefined {
  const at = k.settings?.at;
  if (!at) return undefined;
  const dot = at.indexOf('.');
  return [at.slice(0, dot) as keyof KindSettings, at.slice(dot + 1)];
}

function settingsOf(k: AnyKind, config: KindSettings): unknown {
  const at = sectionOf(k);
  return at && (config[at[0]] as Record<string, unknown>)[at[1]];
}

// ---------------------------------------------------------------------------------------------
// The file

/** The kinds' sections under `routing:` or `destinations:`, by key, for config.ts to put into that section's schema. */
export function settingsSchemas(section: keyof KindSettings, kit: SchemaKit): Record<string, z.ZodType> {
  const shape: Record<string, z.ZodType> = {};
  for (const k of KINDS) {
    const at = sectionOf(k);
    if (at?.[0] === section) shape[at[1]] = k.settings!.schema(kit);
  }
  return shape;
}

/** `{ <key>: value }` as an admin writes it: the destination, what is wrong with it, or undefined for a key that is no kind. */
export function readDestination(key: string, value: unknown): Destination | string | undefined {
  return byKey.get(key)?.read(value, key);
}

/** Why a destination the file names cannot be reached with the settings the file gives its kind. */
export function checkDestination(dest: Destination, config: KindSettings): string | undefined {
  const k = kindOf(dest);
  return k.check?.(dest, settingsOf(k, config));
}

/** Each kind checks what its settings name elsewhere; paths come back whole, from the file's root. */
export function checkKindSettings(config: KindSettings, checks: SettingsChecks): void {
  for (const k of KINDS) {
    const at = sectionOf(k);
    if (!at || !k.checkSettings) continue;
    const below = (path: ReadonlyArray<string | number>) => [...at, ...path];
    k.checkSettings(settingsOf(k, config), {
      destination: (d, path) => checks.destination(d, below(path)),
      schedule: (name, path) => checks.schedule(name, below(path)),
      route: (route, path) => checks.route(route, below(path)),
      issue: (path, message) => checks.issue(below(path), message),
      sms: checks.sms,
    });
  }
}

// ---------------------------------------------------------------------------------------------
// An API answer

/** Where an answer whose `result` names a kind sends the caller; undefined when it names none. */
export function decideResult(answer: RouteAnswer & { result: string }, config: KindSettings): Verdict | undefined {
  const k = byResult.get(answer.result.toLowerCase());
  return k?.answer?.decide(answer, settingsOf(k, config));
}

// ---------------------------------------------------------------------------------------------
// A call

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
