import type { CountryCode } from 'libphonenumber-js';
import { runLogCommand, type CliContext } from '../history/command.js';
import type { SmsSection } from './config.js';
import { historyFilter, querySmsHistory, type HistoryEntry, type HistoryFilter } from './history.js';
import { smsMigrations } from './outbox.js';

/** `call-actions sms history`: the SMS history from the command line, the same query as GET /sms/history. */

export const SMS_USAGE = `  call-actions sms history [--config FILE] [--call-id ID] [--description TEXT] [--recipient PHONE]
                           [--status STATUS]... [--since ISO] [--until ISO] [--limit N] [--offset N] [--json]
                            STATUS: pending, sending, sent, failed, skipped, blocked
`;

type SmsCliConfig = { store: string; sms: SmsSection };

export async function smsCommand(args: string[], ctx: CliContext<SmsCliConfig>): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'history') {
    ctx.err(`unknown command: sms ${sub ?? ''}\n\nusage:\n${SMS_USAGE}`);
    return 2;
  }
  return runLogCommand<HistoryFilter, HistoryEntry, SmsCliConfig>(rest, ctx, {
    name: 'call-actions sms history',
    flags: { description: 'one', recipient: 'one', status: 'many' },
    filter: (q, config) => historyFilter(q, config.sms.defaultCountry as CountryCode | undefined),
    migrations: smsMigrations,
    query: querySmsHistory,
    format: (m) => {
      const answer = m.lastAnswer ? `${m.lastAnswer.httpStatus ?? m.lastAnswer.error ?? ''} ${m.lastAnswer.body ?? ''}`.trim() : '';
      return (
        [
          new Date(m.time).toISOString(),
          m.callId,
          m.description,
          m.provider,
          m.recipient ?? '-',
          m.status,
          `attempts=${m.attempts}`,
          m.delivery ? `delivery=${m.delivery.status}@${new Date(m.delivery.at).toISOString()}${m.delivery.errorCode ? ` error=${m.delivery.errorCode}` : ''}` : 'delivery=-',
          m.reason ?? '',
          m.note ?? '',
          answer.replace(/\s+/g, ' ').slice(0, 120),
        ].join('\t') + '\n'
      );
    },
    footer: (page, filter) => {
      const from = page.entries.length ? (filter.offset ?? 0) + 1 : 0;
      return `${from}-${(filter.offset ?? 0) + page.entries.length} of ${page.total}`;
    },
  });
}
