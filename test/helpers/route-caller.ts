import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSipp, type SippResult } from './sipp.js';

/**
 * A SIP caller for the routing tests, as a SIPp scenario made for each call: it dials, waits for
 * the answer, types keys at given times (RFC 4733 from SIPp's own pcaps, or SIP INFO), and stays
 * on the line until the PBX hangs up or `holdMs` has passed, then hangs up itself. Both endings
 * count as success; the result says which one happened.
 */
export interface CallerPlan {
  /** The number dialled. */
  service: string;
  /** CALLERID(num); a SIP URI user, so no raw '<', '"' or space. */
  from: string;
  fromName?: string;
  /** Keys, each group `afterMs` after the previous one (the first after the answer). */
  keys?: Array<{ afterMs: number; digits: string; via?: 'rfc4733' | 'info' }>;
  holdMs: number;
  localPort?: number;
  timeoutMs?: number;
}

export interface CallerResult extends SippResult {
  /** who ended the call */
  hungUpBy: 'pbx' | 'caller' | 'unknown';
}

const PCAP: Record<string, string> = { '#': 'pound', '*': 'star' };

/** In-dialog requests need rising CSeq numbers: INVITE 1, then each INFO, then the BYE. */
function keySteps(plan: CallerPlan, cseq: { n: number }): string {
  const out: string[] = [];
  for (const group of plan.keys ?? []) {
    out.push(`  <pause milliseconds="${Math.max(1, group.afterMs)}"/>`);
    // SIPp's pcaps all replay the same RTP sequence numbers and timestamps, so Asterisk may take a
    // key as a repeat of the one before and drop it: several keys in a row go as SIP INFO.
    if ((group.via ?? 'rfc4733') === 'rfc4733' && group.digits.length > 1) throw new Error(`"${group.digits}": send several keys via info`);
    for (const d of group.digits) {
      if (!/^[0-9*#]$/.test(d)) throw new Error(`not a key: ${d}`);
      if ((group.via ?? 'rfc4733') === 'rfc4733') {
        out.push(`  <nop><action><exec play_pcap_audio="/usr/share/sip-tester/dtmf_2833_${PCAP[d] ?? d}.pcap"/></action></nop>`);
        // the pcap lasts 280 ms; the next key must not overlap it
        out.push('  <pause milliseconds="400"/>');
      } else {
        out.push(`  <send>
    <![CDATA[
      INFO sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "[$name]" <sip:[$from]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: [$to]
      Call-ID: [call_id]
      CSeq: ${++cseq.n} INFO
      Contact: <sip:[$from]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal=${d}
      Duration=160
    ]]>
  </send>
  <recv response="200" timeout="5000"/>
  <pause milliseconds="200"/>`);
      }
    }
  }
  return out.join('\n');
}

export function callerScenario(plan: CallerPlan): string {
  const cseq = { n: 1 };
  const keys = keySteps(plan, cseq);
  return `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="routing test caller">
  <Global variables="from,name"/>
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "[$name]" <sip:[$from]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:[$from]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-16
      a=sendrecv
    ]]>
  </send>
  <recv response="100" optional="true" timeout="30000"/>
  <recv response="180" optional="true" timeout="30000"/>
  <recv response="183" optional="true" timeout="30000"/>
  <recv response="200" rtd="true" timeout="30000">
    <action><ereg regexp=".*" search_in="hdr" header="To:" assign_to="to"/></action>
  </recv>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "[$name]" <sip:[$from]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: [$to]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:[$from]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
${keys}
  <recv request="BYE" timeout="${Math.max(1, plan.holdMs)}" ontimeout="1"/>
  <send next="2">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[$from]@[local_ip]:[local_port]>
      Content-Length: 0

    ]]>
  </send>
  <label id="1"/>
  <send>
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "[$name]" <sip:[$from]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: [$to]
      Call-ID: [call_id]
      CSeq: ${cseq.n + 1} BYE
      Contact: <sip:[$from]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" timeout="5000"/>
  <label id="2"/>
</scenario>
`;
}

let dir: string | undefined;
let seq = 0;

export async function placeCall(plan: CallerPlan): Promise<CallerResult> {
  dir ??= mkdtempSync(join(tmpdir(), 'route-caller-'));
  const file = join(dir, `caller-${process.pid}-${++seq}.xml`);
  writeFileSync(file, callerScenario(plan));
  const keysMs = (plan.keys ?? []).reduce((t, g) => t + g.afterMs + g.digits.length * 400, 0);
  const r = await runSipp({
    scenario: file,
    service: plan.service,
    from: plan.from,
    fromName: plan.fromName ?? 'Route Caller',
    localPort: plan.localPort,
    timeoutMs: plan.timeoutMs ?? plan.holdMs + keysMs + 40_000,
  });
  // sipp's final screen counts each message: a BYE received means the PBX ended the call
  const count = (re: RegExp) => Number(re.exec(r.stdout)?.[1] ?? '0');
  const hungUpBy = count(/BYE <-+\s+(\d+)/) > 0 ? 'pbx' : count(/BYE -+>\s+(\d+)/) > 0 ? 'caller' : 'unknown';
  return { ...r, hungUpBy };
}
