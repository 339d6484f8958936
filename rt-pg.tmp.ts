import { startPgCluster } from './app/dev/pgcluster.js';
import { writeFileSync } from 'node:fs';
const c = await startPgCluster();
writeFileSync('/tmp/rt/pgport', String(c.port));
await c.psql('CREATE DATABASE appdb');
await c.psql(`CREATE ROLE app LOGIN PASSWORD 'pw'`);
await c.psql('ALTER DATABASE appdb OWNER TO app', { db: 'appdb' });
console.log('port', c.port);
await new Promise(() => undefined);
