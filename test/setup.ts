import { afterAll, afterEach } from 'vitest';
import { endFileLeftovers, endTestLeftovers } from './helpers/leftovers.js';

// Runs after each file's own hooks, which stop what they started; this ends only what a failed
// test or hook left behind.
afterEach(() => {
  endTestLeftovers();
});
afterAll(() => {
  endFileLeftovers();
});
