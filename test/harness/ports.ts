/** Free loopback ports for test servers (never a well-known service port). */
export { freePort } from '../../src/dev/pgcluster.js';
