import { startLocalMaria } from './test/harness/mariadb-local.js';
import { writeFileSync } from 'node:fs';
const m = await startLocalMaria({ password: 'Pw-redteam-1234' });
writeFileSync('/tmp/rt/myport', String(m.port));
console.log('port', m.port, m.dir);
await new Promise(() => undefined);
