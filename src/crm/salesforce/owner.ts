import type { Logger } from '../../log.js';
import type { CallMeter, SalesforceClient } from './client.js';
import type { SalesforceConfig } from './config.js';

/**
 * Who owns a call's Task (MiiTel: the agent who answered it). The agent is the device or queue
 * member that answered (`{agent}`, see src/asterisk/agent.ts), or for an outbound call the phone
 * that placed it. It is mapped to a Salesforce User by `owners.map` (keyed by the agent, or a queue
 * member's MemberName), else looked up once by a User field (`owners.lookup.field`, e.g.
 * Extension) and cached, found or not, for `owners.lookup.cache`. Anything else leaves OwnerId
 * out, so the Task belongs to the integration user — and the reason is logged.
 */

export interface OwnerChoice {
  /** The User id, or undefined for the integration user. */
  ownerId?: string;
  /** map, lookup, or why the integration user owns it. */
  reason: string;
  fallback: boolean;
}

type Owners = NonNullable<SalesforceConfig['owners']>;

export class OwnerResolver {
  private readonly cache = new Map<string, { ids: string[]; until: number }>();
  /** User ids Salesforce refused as owners (inactive, deleted): not offered again until the cache runs out. */
  private readonly refused = new Map<string, number>();

  constructor(
    private readonly owners: Owners,
    private readonly client: SalesforceClient,
    private readonly now: () => number,
    private readonly log?: Logger,
  ) {}

  async resolve(agent: string, memberName: string, meter: CallMeter, signal?: AbortSignal): Promise<OwnerChoice> {
    const map = this.owners.map;
    if (!agent && !memberName) return { reason: 'no agent: nobody answered', fallback: true };
    const mapped = map[agent] ?? (memberName ? map[memberName] : undefined);
    if (mapped) return this.usable(mapped, `map: ${map[agent] ? agent : memberName}`);
    const lookup = this.owners.lookup;
    if (!lookup || !agent) return { reason: `agent ${agent || memberName} is not in owners.map${lookup ? '' : ' (no owners.lookup)'}`, fallback: true };
    const now = this.now();
    let hit = this.cache.get(agent);
    if (!hit || hit.until <= now) {
      hit = { ids: await this.client.findUsers(lookup.field, agent, meter, signal), until: now + lookup.cache };
      this.cache.set(agent, hit);
    }
    if (hit.ids.length === 1) return this.usable(hit.ids[0]!, `lookup: User.${lookup.field} = ${agent}`);
    return { reason: hit.ids.length ? `${hit.ids.length} active Users have ${lookup.field} = ${agent}` : `no active User has ${lookup.field} = ${agent}`, fallback: true };
  }

  /** Salesforce refused this owner (inactive or deleted User): the Task goes to the integration user. */
  refusedOwner(ownerId: string): void {
    this.refused.set(ownerId, this.now() + (this.owners.lookup?.cache ?? 3_600_000));
    this.log?.warn({ owner: ownerId }, 'salesforce refused the Task owner; the integration user owns the Task');
  }

  private usable(ownerId: string, reason: string): OwnerChoice {
    const until = this.refused.get(ownerId);
    if (until !== undefined && until > this.now()) return { reason: `User ${ownerId} (${reason}) was refused as owner`, fallback: true };
    return { ownerId, reason, fallback: false };
  }
}

/** Salesforce's answers to an OwnerId it will not take. */
export const OWNER_REFUSALS = new Set(['INACTIVE_OWNER_OR_USER', 'INVALID_CROSS_REFERENCE_KEY', 'FIELD_INTEGRITY_EXCEPTION']);
