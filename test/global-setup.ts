// Placeholder until the Asterisk provisioning lands: unit tests run with CALL_ACTIONS_NO_ASTERISK=1.
export default async function setup(): Promise<void> {
  if (process.env.CALL_ACTIONS_NO_ASTERISK === '1') return;
  throw new Error('Asterisk provisioning not written yet: run with CALL_ACTIONS_NO_ASTERISK=1');
}
