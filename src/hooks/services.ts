/** What the `hook` step uses: an inline hook run on a live call, whose answer the step waits for. */
export interface InlineHooks {
  runInline(
    name: string,
    ctx: { callId: string; vars: Readonly<Record<string, string>>; signal?: AbortSignal },
  ): Promise<{ status: 'ok' | 'failed' | 'skipped'; reason: string; attempts: number; extracted: Record<string, string>; durationMs: number }>;
}

declare module '../calls/services.js' {
  interface StepServices {
    /** Inline hooks (the `hook` step); absent where no hooks are wired. */
    hooks?: InlineHooks;
  }
}
