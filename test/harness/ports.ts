/** Free loopback ports for test servers (never a well-known service port). */
export { freePort } from '../../app/dev/pgcluster.js';
