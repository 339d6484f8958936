/** The throwaway PostgreSQL of src/dev/pgcluster.ts, under the names the integration tests use. */
export { startPgCluster as startPostgres, findPgBinDir, type PgCluster as PgServer, type HbaMethod } from '../../src/dev/pgcluster.js';
