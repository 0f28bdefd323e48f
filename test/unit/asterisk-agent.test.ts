import { describe, expect, it } from 'vitest';
import { channelResource, deviceOfDial, deviceOfInterface, dialStringUser } from '../../src/asterisk/agent.js';

describe('device names from AMI fields', () => {
  it('the endpoint of a channel name', () => {
    expect(channelResource('PJSIP/2601-0000000a')).toBe('2601');
    expect(channelResource('PJSIP/carrier-trunk-0000000a')).toBe('carrier-trunk');
    expect(channelResource('SIP/agent-00000001')).toBe('agent');
    expect(channelResource('Local/2601@sf-office-00000001;2')).toBe('2601@sf-office');
  });

  it('the person in a dial string', () => {
    expect(dialStringUser('2601@carrier')).toBe('2601');
    expect(dialStringUser('PJSIP/2601@carrier')).toBe('2601');
    expect(dialStringUser('carrier/sip:2601@10.0.0.1:5060')).toBe('2601');
    expect(dialStringUser('2601')).toBeUndefined();
    expect(dialStringUser('PJSIP/agent')).toBeUndefined();
  });

  it('a DialEnd: the dial string wins over a trunk channel; a Local channel names nobody', () => {
    expect(deviceOfDial('PJSIP/carrier-00000003', '2601@carrier')).toEqual({ agent: '2601', via: 'dial-string' });
    expect(deviceOfDial('PJSIP/2601-00000003', '2601')).toEqual({ agent: '2601', via: 'dial' });
    expect(deviceOfDial('PJSIP/agent-00000003', 'PJSIP/agent')).toEqual({ agent: 'agent', via: 'dial' });
    expect(deviceOfDial('Local/2601@sf-office-00000001;1', '2601@sf-office')).toBeUndefined();
  });

  it('a queue member interface', () => {
    expect(deviceOfInterface('PJSIP/agent')).toBe('agent');
    expect(deviceOfInterface('Local/2601@sf-office/n')).toBe('2601');
    expect(deviceOfInterface('SIP/2602')).toBe('2602');
  });
});
