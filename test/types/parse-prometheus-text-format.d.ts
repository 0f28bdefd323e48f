// The package ships no types: what test/e2e/metrics.test.ts reads of its answer.
declare module 'parse-prometheus-text-format' {
  export default function parsePrometheusTextFormat(text: string): unknown[];
}
