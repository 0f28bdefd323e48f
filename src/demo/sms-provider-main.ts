import { maskNumber } from '../log.js';
import { startDemoProvider } from './sms-provider.js';

/**
 * The demo's SMS provider stand-in as a process of its own, for the compose demo, where it runs in
 * a container next to the service: `node dist/demo/sms-provider-main.js`. Same API as the in-process
 * one; the service is given the same credentials through the environment.
 *   SMS_PROVIDER_HOST=0.0.0.0  SMS_PROVIDER_PORT=9000  AOS_TOKEN (required)  AOS_CLIENT_ID=demo  AOS_SMS_CODE=0001
 * GET /requests lists what it received (without the token).
 */
const env = process.env;
if (!env.AOS_TOKEN) {
  process.stderr.write('sms-provider: AOS_TOKEN is required (the token the service sends)\n');
  process.exit(2);
}
const provider = await startDemoProvider({
  host: env.SMS_PROVIDER_HOST ?? '0.0.0.0',
  port: Number(env.SMS_PROVIDER_PORT ?? 9000),
  credentials: { token: env.AOS_TOKEN, clientId: env.AOS_CLIENT_ID ?? 'demo', smsCode: env.AOS_SMS_CODE ?? '0001' },
  listRequests: true,
  onRequest: (r) => process.stdout.write(`sms-provider: SMS to ${maskNumber(r.fields.phoneNumber ?? '', 'info')}: ${r.fields.message}\n`),
});
process.stdout.write(`sms-provider: listening, ${provider.endpoint.replace('127.0.0.1', env.SMS_PROVIDER_HOST ?? '0.0.0.0')}\n`);
// PID 1 in its container: without handlers, SIGTERM would be ignored until the engine's kill
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    // a client's keep-alive connection would hold close() open; nothing is lost by not waiting long
    setTimeout(() => process.exit(0), 1000).unref();
    void provider.close().then(() => process.exit(0));
  });
}
