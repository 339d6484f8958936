/** The throwaway PostgreSQL of app/dev/pgcluster.ts, under the names the integration tests use. */
export { startPgCluster as startPostgres, findPgBinDir, type PgCluster as PgServer, type HbaMethod } from '../../app/dev/pgcluster.js';
