import { describe, expect, it } from 'vitest';
import { CallEventTracker, type AmiSource } from '../../src/asterisk/call-events.js';
import type { CallEvent } from '../../src/asterisk/call-event-types.js';
import type { AmiMessage } from '../../src/asterisk/ami.js';

/**
 * The AMI sequences below are the ones Asterisk 22 sent for real SIP calls on the test PBX
 * (fields trimmed to those the tracker reads).
 */

class FakeAmi implements AmiSource {
  private readonly handlers = new Map<string, Set<(ev: AmiMessage) => void>>();
  on(event: string, fn: (ev: AmiMessage) => void): () => void {
    const name = event.toLowerCase();
    let set = this.handlers.get(name);
    if (!set) this.handlers.set(name, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }
  emit(ev: AmiMessage): void {
    for (const fn of this.handlers.get(ev.event!.toLowerCase()) ?? []) fn(ev);
  }
}

const CALLER = { uniqueid: '1795232673.18', linkedid: '1795232673.18', channel: 'PJSIP/tester-00000012', calleridnum: '+819011112222', calleridname: 'Queue Caller' };
const AGENT = { uniqueid: '1795232674.19', linkedid: '1795232673.18', channel: 'PJSIP/agent-00000013', calleridnum: '100' };

function setup() {
  let now = 1_000_000;
  const tracker = new CallEventTracker(undefined, () => now);
  const ami = new FakeAmi();
  tracker.attachAmi(ami);
  const events: CallEvent[] = [];
  tracker.on('event', (e) => events.push(e));
  return { tracker, ami, events, advance: (ms: number) => (now += ms) };
}

const kinds = (events: CallEvent[]) => events.map((e) => e.kind);

describe('call events from AMI', () => {
  it('a caller answered by a queue agent: start, join, answer, end — once each, with the DID, the member and the cause', () => {
    const { ami, events, advance } = setup();
    ami.emit({ event: 'Newchannel', ...CALLER, exten: '+81501234567', context: 'from-test', channelstate: '4' });
    advance(500);
    ami.emit({ event: 'QueueCallerJoin', ...CALLER, exten: '+81501234567', context: 'from-test', queue: 'support', position: '1' });
    ami.emit({ event: 'Newchannel', ...AGENT, calleridnum: '<unknown>', exten: 's', context: 'from-test' });
    advance(300);
    ami.emit({ event: 'DialEnd', ...CALLER, exten: '+81501234567', context: 'from-test', dialstatus: 'ANSWER', destchannel: AGENT.channel, destcalleridnum: '100' });
    ami.emit({ event: 'QueueCallerLeave', ...CALLER, exten: '+81501234567', context: 'from-test', queue: 'support', position: '1' });
    ami.emit({ event: 'AgentConnect', ...CALLER, queue: 'support', membername: 'Agent', interface: 'PJSIP/agent' });
    advance(2000);
    ami.emit({ event: 'Hangup', ...AGENT, cause: '16', 'cause-txt': 'Normal Clearing' });
    ami.emit({ event: 'Hangup', ...CALLER, cause: '16', 'cause-txt': 'Normal Clearing' });

    expect(kinds(events)).toEqual(['call.start', 'queue.join', 'call.answer', 'call.end']);
    const [start, , answer, end] = events;
    expect(start!.vars).toMatchObject({ callId: CALLER.linkedid, caller: '+819011112222', TEL: '+819011112222', called: '+81501234567', did: '+81501234567', callerName: 'Queue Caller' });
    // the member's device, not its caller ID (DestCallerIDNum 100)
    expect(answer!.vars).toMatchObject({ answeredBy: 'agent', agent: 'agent', answerSeconds: '1' });
    expect(end!.vars).toMatchObject({ duration: '3', talkSeconds: '2', answered: 'yes', cause: '16', causeText: 'Normal Clearing', agent: 'agent', agentName: 'Agent', firstAgent: 'agent' });
    expect(new Set(events.map((e) => e.callId))).toEqual(new Set([CALLER.linkedid]));
  });

  it('a caller who hangs up while queued: abandon (not a key exit), then end with cause 0', () => {
    const { ami, events, advance } = setup();
    ami.emit({ event: 'Newchannel', ...CALLER, exten: '100', context: 'from-test' });
    ami.emit({ event: 'QueueCallerJoin', ...CALLER, exten: '100', context: 'from-test', queue: 'support', position: '1' });
    advance(3000);
    ami.emit({ event: 'QueueCallerAbandon', ...CALLER, exten: '100', context: 'from-test', queue: 'support', position: '1', originalposition: '1', holdtime: '3' });
    ami.emit({ event: 'QueueCallerLeave', ...CALLER, exten: '100', context: 'from-test', queue: 'support', position: '1' });
    ami.emit({ event: 'Hangup', ...CALLER, cause: '0', 'cause-txt': 'Unknown' });
    expect(kinds(events)).toEqual(['call.start', 'queue.join', 'queue.abandon', 'call.end']);
    expect(events[2]!.vars).toMatchObject({ queue: 'support', position: '1', originalPosition: '1', wait: '3' });
    expect(events[3]!.vars).toMatchObject({ answered: 'no', talkSeconds: '0', cause: '0', causeText: 'Unknown' });
  });

  it('# in the queue: a key exit from the Leave that jumped to the exit context; the stage that follows does not repeat it', () => {
    const { tracker, ami, events, advance } = setup();
    ami.emit({ event: 'Newchannel', ...CALLER, exten: '100', context: 'from-test' });
    ami.emit({ event: 'QueueCallerJoin', ...CALLER, exten: '100', context: 'from-test', queue: 'support', position: '2' });
    advance(4000);
    ami.emit({ event: 'DTMFEnd', ...CALLER, digit: '#', direction: 'Received' });
    ami.emit({ event: 'QueueCallerLeave', ...CALLER, exten: '#', context: 'call-actions-queue-exit', queue: 'support', position: '2' });
    tracker.stageEntered({ callId: CALLER.linkedid, channelId: CALLER.uniqueid, stage: 'queue-exit', exten: '#', vars: { caller: CALLER.calleridnum, queue: 'support', position: '2', wait: '4', did: '100' } });
    ami.emit({ event: 'Hangup', ...CALLER, cause: '16', 'cause-txt': 'Normal Clearing' });
    expect(kinds(events)).toEqual(['call.start', 'queue.join', 'queue.key-exit', 'stage.entered', 'call.end']);
    expect(events[2]!.vars).toMatchObject({ queue: 'support', key: '#', position: '2', wait: '4', TEL: CALLER.calleridnum });
    expect(events[3]!.vars).toMatchObject({ stage: 'queue-exit', queue: 'support' });
  });

  it('the stage alone reports the key exit when AMI did not see it (or has not yet), and AMI then does not repeat it', () => {
    const { tracker, ami, events } = setup();
    ami.emit({ event: 'Newchannel', ...CALLER, exten: '100', context: 'from-test' });
    ami.emit({ event: 'QueueCallerJoin', ...CALLER, exten: '100', context: 'from-test', queue: 'support', position: '1' });
    tracker.stageEntered({ callId: CALLER.linkedid, channelId: CALLER.uniqueid, stage: 'queue-exit', exten: '#', vars: { caller: CALLER.calleridnum, queue: 'support', position: '1', wait: '7' } });
    ami.emit({ event: 'QueueCallerLeave', ...CALLER, exten: '#', context: 'call-actions-queue-exit', queue: 'support', position: '1' });
    expect(kinds(events).filter((k) => k === 'queue.key-exit')).toHaveLength(1);
    expect(events.find((e) => e.kind === 'queue.key-exit')!.vars.wait).toBe('7');
    // same visit, same key: a consumer that saw it before a restart drops it
    expect(events.find((e) => e.kind === 'queue.key-exit')!.key).toBe(`${CALLER.linkedid}/queue.key-exit/${CALLER.uniqueid}/support/1`);
  });

  it('without AMI the stage still gives stage.entered and the key exit, with the session\'s caller and DID', () => {
    const tracker = new CallEventTracker();
    const events: CallEvent[] = [];
    tracker.on('event', (e) => events.push(e));
    tracker.stageEntered({ callId: 'L1', channelId: 'C1', stage: 'queue-exit', exten: '#', vars: { caller: '+81 90', callerName: 'A "B" <c>\nd', called: '+81501234567', queue: 'support' } });
    expect(kinds(events)).toEqual(['stage.entered', 'queue.key-exit']);
    expect(events[1]!.vars).toMatchObject({ caller: '+81 90', callerName: 'A "B" <c>\nd', did: '+81501234567', key: '#' });
  });

  it('a caller who times out of the queue or is answered is no key exit', () => {
    const { ami, events } = setup();
    ami.emit({ event: 'Newchannel', ...CALLER, exten: '1', context: 'from-test' });
    ami.emit({ event: 'QueueCallerJoin', ...CALLER, exten: '1', context: 'from-test', queue: 'support', position: '1' });
    // exten "1" is a single digit, but the channel never left its context: a timeout, not a key
    ami.emit({ event: 'QueueCallerLeave', ...CALLER, exten: '1', context: 'from-test', queue: 'support', position: '1' });
    expect(kinds(events)).toEqual(['call.start', 'queue.join']);
  });

  it('a second entry of the same stage is a new occurrence; the agent leg never starts a call of its own', () => {
    const { tracker, ami, events } = setup();
    ami.emit({ event: 'Newchannel', ...AGENT, exten: 's', context: 'from-test' });
    ami.emit({ event: 'Newchannel', ...CALLER, exten: '111', context: 'from-test' });
    const entry = { callId: CALLER.linkedid, channelId: CALLER.uniqueid, stage: 'notify', vars: { caller: CALLER.calleridnum } };
    tracker.stageEntered(entry);
    tracker.stageEntered(entry);
    expect(kinds(events)).toEqual(['call.start', 'stage.entered', 'stage.entered']);
    expect(events[1]!.key).not.toBe(events[2]!.key);
  });

  it('calls whose channels vanished while AMI was down end at the reconnect', async () => {
    let up: (u: boolean) => void = () => undefined;
    const ami = new FakeAmi() as FakeAmi & Required<AmiSource>;
    ami.onStatus = (fn) => void (up = fn);
    ami.list = async () => [{ event: 'CoreShowChannel', uniqueid: 'other' }];
    const tracker = new CallEventTracker();
    tracker.attachAmi(ami);
    const events: CallEvent[] = [];
    tracker.on('event', (e) => events.push(e));
    ami.emit({ event: 'Newchannel', ...CALLER, exten: '100' });
    up(true);
    await new Promise((r) => setTimeout(r, 10));
    expect(kinds(events)).toEqual(['call.start', 'call.end']);
    expect(events[1]!.vars.causeText).toBe('ended while the AMI link was down');
    expect(tracker.size).toBe(0);
  });

  // With AMI a call ends with its last Hangup; without, it is only ever seen entering stages.
  it.each([
    { ami: true, idle: '4 h', gapMs: 3 * 3_600_000, afterMs: 2 * 3_600_000 },
    { ami: false, idle: '15 min', gapMs: 10 * 60_000, afterMs: 6 * 60_000 },
  ])('AMI $ami: forgets a call $idle after it was last heard of, but not a newer one', ({ ami, gapMs, afterMs }) => {
    let now = 0;
    const tracker = new CallEventTracker(undefined, () => now);
    if (ami) tracker.attachAmi(new FakeAmi());
    tracker.stageEntered({ callId: 'old', channelId: 'c1', stage: 'welcome', vars: {} });
    now += gapMs;
    tracker.stageEntered({ callId: 'new', channelId: 'c2', stage: 'welcome', vars: {} });
    now += afterMs;
    expect(tracker.prune()).toBe(1);
    expect(tracker.size).toBe(1);
    tracker.detach();
  });

  it('follows at most maxCalls calls: the oldest is forgotten, the newest kept', () => {
    const tracker = new CallEventTracker(undefined, Date.now, 3);
    const events: CallEvent[] = [];
    tracker.on('event', (e) => events.push(e));
    for (const id of ['a', 'b', 'c', 'd', 'e']) tracker.stageEntered({ callId: id, channelId: `ch-${id}`, stage: 'welcome', vars: {} });
    expect(tracker.size).toBe(3);
    // 'c' is still followed: its second visit counts as the second
    tracker.stageEntered({ callId: 'c', channelId: 'ch-c', stage: 'welcome', vars: {} });
    expect(events.filter((e) => e.callId === 'c').map((e) => e.key)).toEqual([expect.stringContaining('ch-c/welcome/1'), expect.stringContaining('ch-c/welcome/2')]);
    expect(tracker.size).toBe(3);
    tracker.detach();
  });
});

/**
 * Who answered: the events each way of reaching a person gives (Asterisk 22 on the test PBX, the
 * DIDs of docker/asterisk/conf/extensions_salesforce-test.conf; fields trimmed to those read).
 */
describe('who answered ({agent})', () => {
  const L = '1796288033.2';
  const caller = { uniqueid: L, linkedid: L, channel: 'PJSIP/tester-00000002', calleridnum: '+81354127788', calleridname: 'Kenji' };
  const begin = (destchannel: string, destuniqueid: string, dialstring: string, from = caller) => ({ event: 'DialBegin', ...from, destchannel, destuniqueid, dialstring });
  const answered = (destchannel: string, destuniqueid: string, destcalleridnum: string, from = caller) => ({ event: 'DialEnd', ...from, destchannel, destuniqueid, destcalleridnum, dialstatus: 'ANSWER' });
  const leg = (uniqueid: string, channel: string) => ({ event: 'Newchannel', uniqueid, linkedid: L, channel, exten: 's', context: 'from-test' });
  const hangups = (ami: FakeAmi, ...ids: string[]) => {
    for (const uniqueid of ids) ami.emit({ event: 'Hangup', uniqueid, linkedid: L, cause: '16', 'cause-txt': 'Normal Clearing' });
  };
  const run = (events: Array<Record<string, string>>, extraLegs: string[] = []) => {
    const { ami, events: out } = setup();
    ami.emit({ event: 'Newchannel', ...caller, exten: '0120556601', context: 'from-test' });
    for (const e of events) ami.emit(e);
    hangups(ami, ...extraLegs, L);
    const answer = out.find((e) => e.kind === 'call.answer');
    const end = out.find((e) => e.kind === 'call.end');
    return { answer: answer?.vars, end: end?.vars };
  };

  it('a device dialled directly: the endpoint of DestChannel, not DestCallerIDNum (the DID)', () => {
    const { answer, end } = run([leg('1796288033.3', 'PJSIP/2601-00000003'), begin('PJSIP/2601-00000003', '1796288033.3', '2601'), answered('PJSIP/2601-00000003', '1796288033.3', '0120556601')], ['1796288033.3']);
    expect(answer).toMatchObject({ answeredBy: '2601', agent: '2601', agentChannel: 'PJSIP/2601-00000003' });
    expect(end).toMatchObject({ agent: '2601', firstAgent: '2601', agents: '2601' });
  });

  it('a device behind a trunk: DestChannel names the trunk, the DialBegin dial string the device', () => {
    const { end } = run([leg('1796288033.3', 'PJSIP/carrier-00000003'), begin('PJSIP/carrier-00000003', '1796288033.3', '2601@carrier'), answered('PJSIP/carrier-00000003', '1796288033.3', '0120556602')], ['1796288033.3']);
    expect(end).toMatchObject({ agent: '2601', agentChannel: 'PJSIP/carrier-00000003' });
  });

  it('a Local channel that ends on a device: the device its ;2 half dialled, not the Local channel', () => {
    const local1 = { uniqueid: '1796288033.3', linkedid: L, channel: 'Local/2601@sf-office-00000001;1' };
    const local2 = { uniqueid: '1796288033.4', linkedid: L, channel: 'Local/2601@sf-office-00000001;2' };
    const { answer, end } = run(
      [
        leg(local1.uniqueid, local1.channel),
        leg(local2.uniqueid, local2.channel),
        begin(local1.channel, local1.uniqueid, '2601@sf-office'),
        leg('1796288033.5', 'PJSIP/2601-00000005'),
        begin('PJSIP/2601-00000005', '1796288033.5', '2601', { ...local2, calleridnum: '+81354127788', calleridname: 'Kenji' }),
        answered('PJSIP/2601-00000005', '1796288033.5', '2601', { ...local2, calleridnum: '+81354127788', calleridname: 'Kenji' }),
        answered(local1.channel, local1.uniqueid, '2601'),
      ],
      [local1.uniqueid, local2.uniqueid, '1796288033.5'],
    );
    expect(answer).toMatchObject({ agent: '2601' });
    expect(end).toMatchObject({ agent: '2601', firstAgent: '2601', agents: '2601' });
  });

  it('a queue member whose interface is a Local channel: the device behind it, with the MemberName', () => {
    const { end } = run(
      [
        leg('1796288033.5', 'PJSIP/2602-00000005'),
        begin('PJSIP/2602-00000005', '1796288033.5', '2602', { uniqueid: '1796288033.4', linkedid: L, channel: 'Local/2602@sf-office-00000001;2', calleridnum: '', calleridname: '' }),
        answered('PJSIP/2602-00000005', '1796288033.5', '2602', { uniqueid: '1796288033.4', linkedid: L, channel: 'Local/2602@sf-office-00000001;2', calleridnum: '', calleridname: '' }),
        answered('Local/2602@sf-office-00000001;1', '1796288033.3', '2602'),
        { event: 'AgentConnect', ...caller, queue: 'sf-team', interface: 'Local/2602@sf-office/n', membername: 'Hanako Sato', destuniqueid: '1796288033.3', destchannel: 'Local/2602@sf-office-00000001;1' },
      ],
      ['1796288033.5'],
    );
    expect(end).toMatchObject({ agent: '2602', agentName: 'Hanako Sato', agents: '2602' });
  });

  it('a blind transfer: the caller dials the next phone under the same linkedid; the first stays {firstAgent}', () => {
    const { answer, end } = run(
      [
        leg('1796288033.3', 'PJSIP/2601-00000003'),
        begin('PJSIP/2601-00000003', '1796288033.3', '2601'),
        answered('PJSIP/2601-00000003', '1796288033.3', '0120556601'),
        { event: 'BlindTransfer', result: 'Success', transfererchannel: 'PJSIP/2601-00000003', transfererlinkedid: L, transfereechannel: caller.channel, transfereelinkedid: L, extension: '2602', context: 'sf-office' },
        { event: 'Hangup', uniqueid: '1796288033.3', linkedid: L, cause: '16' },
        leg('1796288033.4', 'PJSIP/2602-00000004'),
        begin('PJSIP/2602-00000004', '1796288033.4', '2602'),
        answered('PJSIP/2602-00000004', '1796288033.4', '2602'),
      ],
      ['1796288033.4'],
    );
    expect(answer).toMatchObject({ agent: '2601' });
    expect(end).toMatchObject({ agent: '2602', firstAgent: '2601', agents: '2601,2602' });
  });

  it('an attended transfer: the target was called under the transferring phone\'s linkedid; AttendedTransfer names it', () => {
    const { end } = run(
      [
        leg('1796288033.3', 'PJSIP/2601-00000003'),
        begin('PJSIP/2601-00000003', '1796288033.3', '2601'),
        answered('PJSIP/2601-00000003', '1796288033.3', '0120556601'),
        { event: 'AttendedTransfer', result: 'Success', desttype: 'Bridge', origtransfererchannel: 'PJSIP/2601-00000003', origtransfererlinkedid: L, secondtransfererchannel: 'PJSIP/2601-00000005', secondtransfererlinkedid: '1796288040.5', transfereechannel: caller.channel, transfereelinkedid: L, transfertargetchannel: 'PJSIP/2602-00000006', transfertargetuniqueid: '1796288040.6', transfertargetlinkedid: '1796288040.5' },
        { event: 'AttendedTransfer', result: 'Fail', transfereelinkedid: L, transfertargetchannel: 'PJSIP/2699-00000009' },
      ],
      ['1796288033.3'],
    );
    expect(end).toMatchObject({ agent: '2602', firstAgent: '2601', agents: '2601,2602' });
  });

  it('Pickup(): the phone that picked up, whether the Pickup event comes before or after the DialEnd', () => {
    const target = '1796288046.13';
    const pickup = { event: 'Pickup', channel: 'PJSIP/2602-0000000e', uniqueid: '1796288047.14', linkedid: '1796288047.14', targetchannel: 'PJSIP/2601-0000000d', targetuniqueid: target, targetlinkedid: L };
    const before = run([leg(target, 'PJSIP/2601-0000000d'), begin('PJSIP/2601-0000000d', target, '2601'), pickup, answered('PJSIP/2602-0000000e', target, '2601')], [target]);
    expect(before.answer).toMatchObject({ agent: '2602' });
    expect(before.end).toMatchObject({ agent: '2602', firstAgent: '2602', agents: '2602' });
    // a DialEnd that still names the ringing phone, then the Pickup
    const after = run([leg(target, 'PJSIP/2601-0000000d'), begin('PJSIP/2601-0000000d', target, '2601'), answered('PJSIP/2601-0000000d', target, '2601'), pickup], [target]);
    expect(after.end).toMatchObject({ agent: '2602', firstAgent: '2602', agents: '2602' });
  });
});
