import type { AmiMessage } from './ami.js';

/**
 * Who answered a call: the device (or queue member) that talked to the caller, from AMI events.
 *
 * Where each way of reaching a person shows it (Asterisk 22, checked with real SIP calls on the
 * test PBX, see test/e2e/salesforce-agent.test.ts):
 *
 * - **A dialled device** (`Dial(PJSIP/2601)`): DialEnd with DialStatus ANSWER; the device is the
 *   endpoint part of `DestChannel` (`PJSIP/2601-0000000a` → `2601`). Not `DestCallerIDNum`:
 *   Asterisk gives the callee channel the dialled extension as its caller ID, which for a call
 *   that came in on a DID is the DID.
 * - **A device behind a trunk or a contact** (`Dial(PJSIP/2601@carrier)`,
 *   `Dial(PJSIP/carrier/sip:2601@host)`): `DestChannel` is named after the trunk
 *   (`PJSIP/carrier-…`), so the device is the user part of the dial string (`2601@carrier` →
 *   `2601`). DialEnd does not carry the dial string: it is kept from the leg's DialBegin (by
 *   `DestUniqueid`).
 * - **A Local channel** (`Dial(Local/2601@office)`, or a queue member `Local/2601@office/n`): the
 *   Local half `;2` dials the device itself, and that DialEnd (same linkedid) names it; the outer
 *   DialEnd towards `Local/…;1` is not a person and is skipped. Only when nothing behind it
 *   reports does the Local channel's extension stand in.
 * - **A queue member** (static in queues.conf, dynamic by AddQueueMember/QueueAdd, or realtime):
 *   AgentConnect's `Interface` (`PJSIP/agent` → `agent`) and `MemberName` (`{agentName}`). All
 *   three kinds of member produce the same AgentConnect; app_queue's DialEnd towards the member
 *   comes first and names the same device.
 * - **A call picked up by another phone** (`Pickup()`, `PickupChan()`): the Pickup event's
 *   `Channel` is the phone that picked up and `TargetUniqueid` the ringing leg it took over. The
 *   caller's DialEnd then still names the ringing leg (its channel is moved onto the picker's), so
 *   a DialEnd of a picked-up leg is credited to the picker.
 * - **A blind transfer** (a phone's REFER, the `BlindTransfer` action): the caller's channel goes
 *   on to the new extension and dials the next device under the same linkedid: another DialEnd.
 * - **An attended transfer**: the target was called by the transferring phone, under another
 *   linkedid. AttendedTransfer (Result Success) names the caller's call by `TransfereeLinkedid`
 *   and the new device by `TransferTargetChannel`.
 *
 * The last device that answered is `{agent}`, the first `{firstAgent}`.
 */

export interface AgentLeg {
  /** The device: an endpoint name or extension, e.g. 2601, agent. */
  agent: string;
  /** The queue member's name (MemberName), when a queue connected the call. */
  name: string;
  /** The answering channel (e.g. PJSIP/2601-0000000a); for a queue member its Interface. */
  channel: string;
  uniqueid: string;
  /** Where it was read from: dial, dial-string, local, queue, pickup, attended-transfer. */
  via: string;
}

const LOCAL = /^Local\//i;

/** `TECH/resource-xxxxxxxx` → resource (channel names end in a dash and 8 hex digits). */
export function channelResource(channel: string): string {
  const rest = channel.slice(channel.indexOf('/') + 1);
  const cut = rest.replace(/;\d$/, '').replace(/-[0-9a-f]{8}$/i, '');
  return cut;
}

/** The person-side name in a dial string: `2601@trunk` → 2601, `trunk/sip:2601@host` → 2601, `2601` → 2601. */
export function dialStringUser(dialString: string): string | undefined {
  // app_dial's DialString has no technology; app_queue's is the member's interface (PJSIP/agent)
  const ds = dialString.trim().replace(/^(PJSIP|SIP|IAX2|DAHDI)\//i, '');
  const uri = /\/sips?:([^@;>]+)@/i.exec(ds);
  if (uri) return uri[1];
  const at = /^([^@/]+)@[^/]+$/.exec(ds);
  if (at) return at[1];
  return undefined;
}

/** The device a DialEnd names, or undefined for a Local channel (the device behind it reports itself). */
export function deviceOfDial(destChannel: string, dialString: string | undefined): { agent: string; via: string } | undefined {
  if (!destChannel || LOCAL.test(destChannel)) return undefined;
  const resource = channelResource(destChannel);
  const user = dialString ? dialStringUser(dialString) : undefined;
  if (user && user !== resource) return { agent: user, via: 'dial-string' };
  return { agent: resource, via: 'dial' };
}

/** A queue member's Interface as a device: `PJSIP/agent` → agent, `Local/2601@office/n` → 2601. */
export function deviceOfInterface(iface: string): string {
  if (LOCAL.test(iface)) return iface.slice(6).split(/[@/]/)[0] ?? iface;
  return iface.slice(iface.indexOf('/') + 1).split('/')[0] ?? iface;
}

/** The answering legs of one call, in order. */
export class AgentTrail {
  readonly legs: AgentLeg[] = [];
  /** Ringing legs taken over by Pickup: target uniqueid → the picker. */
  private readonly picked = new Map<string, AgentLeg>();
  /** A Local channel that answered with nothing behind it yet. */
  private localStandIn: AgentLeg | undefined;
  /** DialBegin's DialString per dialled leg (DialEnd has none). */
  private readonly dialStrings = new Map<string, string>();

  /** DialBegin: remembers the dial string of the leg. */
  dialBegan(ev: AmiMessage): void {
    if (ev.destuniqueid && ev.dialstring) this.dialStrings.set(ev.destuniqueid, ev.dialstring);
  }

  get first(): AgentLeg | undefined {
    return this.legs[0] ?? this.localStandIn;
  }

  get last(): AgentLeg | undefined {
    return this.legs[this.legs.length - 1] ?? this.localStandIn;
  }

  /** DialEnd with DialStatus ANSWER. Returns the leg it named, if any. */
  dialAnswered(ev: AmiMessage): AgentLeg | undefined {
    const destChannel = ev.destchannel ?? '';
    const uniqueid = ev.destuniqueid ?? '';
    const picker = this.picked.get(uniqueid);
    if (picker) return this.add({ ...picker, uniqueid });
    const device = deviceOfDial(destChannel, ev.dialstring ?? this.dialStrings.get(uniqueid));
    if (!device) {
      if (LOCAL.test(destChannel)) this.localStandIn ??= { agent: channelResource(destChannel).split('@')[0] ?? '', name: '', channel: destChannel, uniqueid, via: 'local' };
      return undefined;
    }
    return this.add({ agent: device.agent, name: '', channel: destChannel, uniqueid, via: device.via });
  }

  /** AgentConnect: the queue member; names the leg its DialEnd made, or is the leg itself. */
  queueConnected(ev: AmiMessage): AgentLeg {
    const iface = ev.interface ?? '';
    const name = ev.membername ?? '';
    const uniqueid = ev.destuniqueid ?? '';
    const sameLeg = this.legs.find((l) => l.uniqueid === uniqueid && uniqueid !== '');
    // A Local member: the device behind it answered (and reported) just before.
    const behindLocal = LOCAL.test(iface) ? this.last : undefined;
    const leg = sameLeg ?? (behindLocal && this.legs.length ? behindLocal : undefined);
    if (leg) {
      leg.name = name;
      return leg;
    }
    const picker = this.picked.get(uniqueid);
    return this.add({ agent: picker?.agent ?? deviceOfInterface(iface), name, channel: picker?.channel ?? iface, uniqueid, via: picker ? 'pickup' : 'queue' });
  }

  /** Pickup: `picker` took over the ringing leg `targetUniqueid`. */
  pickedUp(pickerChannel: string, targetUniqueid: string): AgentLeg {
    const leg: AgentLeg = { agent: channelResource(pickerChannel), name: '', channel: pickerChannel, uniqueid: targetUniqueid, via: 'pickup' };
    this.picked.set(targetUniqueid, leg);
    // The caller's DialEnd came first: it named the ringing phone, which never talked.
    const i = this.legs.findIndex((l) => l.uniqueid === targetUniqueid);
    if (i >= 0) this.legs[i] = { ...leg, name: this.legs[i]!.name };
    else this.legs.push(leg);
    return leg;
  }

  /** AttendedTransfer: the caller now talks to the target channel. */
  transferredTo(targetChannel: string, targetUniqueid: string): AgentLeg | undefined {
    const device = deviceOfDial(targetChannel, undefined);
    if (!device) return undefined;
    return this.add({ agent: device.agent, name: '', channel: targetChannel, uniqueid: targetUniqueid, via: 'attended-transfer' });
  }

  private add(leg: AgentLeg): AgentLeg {
    const same = this.legs.findIndex((l) => l.uniqueid === leg.uniqueid && leg.uniqueid !== '');
    if (same >= 0) {
      this.legs[same] = { ...leg, name: leg.name || this.legs[same]!.name };
      return this.legs[same]!;
    }
    this.legs.push(leg);
    return leg;
  }

  /** Merge fields: {agent}, {agentName}, {agentChannel}, {firstAgent}, {agents}. */
  fields(): { agent: string; agentName: string; agentChannel: string; firstAgent: string; agents: string } {
    const last = this.last;
    return {
      agent: last?.agent ?? '',
      agentName: last?.name ?? '',
      agentChannel: last?.channel ?? '',
      firstAgent: this.first?.agent ?? '',
      agents: this.legs.map((l) => l.agent).filter((a, i, all) => a && all.indexOf(a) === i).join(','),
    };
  }
}
