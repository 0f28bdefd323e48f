import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { AmiPort } from '../../src/asterisk/ami.js';
import { readAsteriskEnv } from '../helpers/asterisk.js';

/**
 * The AMI port's list actions against the real Asterisk: they answer with events up to a
 * "…Complete" one, and collecting them must leave the manager as it found it. The chaos run found
 * the service crashing here when AMI came back after an Asterisk restart (the call-event tracker
 * lists the live channels then).
 */
const env = readAsteriskEnv();
let ami: AmiPort;

beforeAll(async () => {
  ami = new AmiPort({ host: env.amiHost, port: env.amiPort, user: env.amiUser, secret: env.amiPass, timeoutMs: 3000, log: createLogger({ level: 'silent' }) });
  ami.start();
  const end = Date.now() + 10_000;
  while (!ami.ready) {
    if (Date.now() > end) throw new Error('AMI not connected within 10 s');
    await new Promise((r) => setTimeout(r, 50));
  }
});
afterAll(async () => {
  await ami?.stop();
});

describe('AMI port on the real Asterisk', () => {
  it('collects a list action up to its Complete event, again and again', async () => {
    for (let i = 0; i < 3; i++) {
      const queues = await ami.list({ action: 'QueueStatus' });
      const params = queues.filter((e) => e.event === 'QueueParams').map((e) => e.queue);
      expect(params).toContain('support');
      expect(queues.some((e) => e.event?.endsWith('Complete'))).toBe(false);
    }
    const channels = await ami.list({ action: 'CoreShowChannels' });
    expect(channels.every((e) => e.event === 'CoreShowChannel')).toBe(true);
    // still connected: nothing above threw out of the manager's event handler
    expect(ami.ready).toBe(true);
    expect((await ami.action({ action: 'Ping' })).response).toBe('Success');
  });
});
