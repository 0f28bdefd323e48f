export { runSipp, type SippOptions, type SippResult } from '../../src/demo/local-pbx.js';
