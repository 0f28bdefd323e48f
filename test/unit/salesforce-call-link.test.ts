import { describe, expect, it } from 'vitest';
import { rootSchema } from '../../src/app/config-schema.js';
import { parseConfigText } from '../../src/config/load.js';
import { callPageUrl, taskFields } from '../../src/crm/salesforce/task.js';

/** console.publicUrl: the Task comment carries the call's console page, as MiiTel's carries its call history's URL (seed 003). */
describe("the Salesforce Task links to the call's console page", () => {
  const config = parseConfigText(
    `asterisk:\n  ari: { user: u, password: p }\ncrm:\n  salesforce:\n    instanceUrl: https://example.my.salesforce.com\n    auth: { flow: client_credentials, clientId: c, clientSecret: s }\n`,
    'cfg.yaml',
    rootSchema,
    {},
  ).value.crm!.salesforce!;
  const call = { callId: '1712345678.42', direction: 'inbound', number: '+18005551212', dialStart: Date.now() - 60_000, answered: true, vars: { talkSeconds: '30' } };

  it('ends the comment with the link when console.publicUrl is set, and not otherwise', () => {
    const withLink = taskFields('create', 'end', call as never, undefined, { ...config, callPageBase: 'https://console.example.net/' });
    expect(String(withLink.Description).split('\n').at(-1)).toBe('https://console.example.net/calls/1712345678.42');
    const without = taskFields('create', 'end', call as never, undefined, config);
    expect(String(without.Description)).not.toContain('/calls/');
  });

  it('escapes the call id', () => {
    expect(callPageUrl('https://c.example', 'a/b c')).toBe('https://c.example/calls/a%2Fb%20c');
  });
});
