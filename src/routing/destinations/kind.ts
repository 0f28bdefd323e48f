import type { ContinueTarget } from '../../asterisk/ari.js';
import type { StepResult } from '../../calls/step.js';
import type { Destination } from '../settings.js';
import type { Run, Scope } from '../run.js';

/**
 * What a destination kind is. Each module of destinations/ defines one, and the table in
 * index.ts lists them; everything else in routing/ asks the table, so a new kind is one module
 * and one line of the table.
 */
export interface DestinationKind<D extends Destination = Destination, S = undefined> {
  /** what `Destination.kind` says */
  readonly kind: D['kind'];
  /**
   * Where its own settings are in the file: `routing.<section>` (named entries an answer may
   * point at) or `destinations.<kind>` (how the dialplan reaches it). The table hands them to
   * the functions below as `settings`.
   */
  readonly settings?: { readonly at: SettingsAt };
  /** It can bring the caller back to a menu or an integration, so the loop guard counts it. */
  readonly loops?: boolean;
  /** It starts by collecting keys, so the answer's spoken data is its prompt (a key stops it) rather than played first. */
  readonly dataIsPrompt?: boolean;
  /** How the routing log and the dialplan name a destination; `kind:name` when left out. */
  describe?(dest: D): string;
  /** The dialplan place it is, when it is just one: a hand-over names it so the dialplan can take the route's fallback itself. */
  place?(dest: D, settings: S): ContinueTarget | undefined;
  /** Takes the caller there. */
  reach(dest: D, run: Run, scope: Scope, settings: S): Promise<StepResult>;
}

/** The common shape: a kind and the name of one thing of that kind (a queue, a menu, a number). */
export interface Named<K extends string> extends Destination {
  readonly kind: K;
  readonly name: string;
}

export type SettingsAt = `routing.${string}` | `destinations.${string}`;

/** Checks a kind's module against the contract, keeping its own types for the table. */
export function defineDestination<D extends Destination, S = undefined>(kind: DestinationKind<D, S>): DestinationKind<D, S> {
  return kind;
}
