/**
 * The library's public API (package.json `main`): start the service from a config, or load and
 * validate a config file the way `call-actions validate` does.
 *
 *   import { loadConfig, startService } from 'call-actions';
 *   const { config, secrets, place } = loadConfig('call-actions.yaml');
 *   const service = await startService(config, { secrets, place });
 */
import { loadConfigFile, type Loaded } from './config/load.js';
import { rootSchema, type Config } from './app/config-schema.js';

export { startService, type Health, type Service, type ServiceOptions } from './app/service.js';
export { jsonSchema, rootSchema, type Config } from './app/config-schema.js';
export { ConfigError, formatIssue, type ConfigIssue } from './config/load.js';
export type { Feature, FeatureContext, FeatureRuntime } from './calls/feature.js';
export type { StepDefinition, StepResult, StepSpec } from './calls/step.js';

/**
 * Reads, substitutes `${ENV}` in and validates a config file. Throws ConfigError listing every
 * problem as `file:line:col: field: message`.
 */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): { config: Config; secrets: string[]; place: Loaded<Config>['place'] } {
  const { value, secrets, place } = loadConfigFile(file, rootSchema, env);
  return { config: value, secrets, place };
}
