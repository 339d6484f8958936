/** A throwaway CA and a server certificate for 127.0.0.1/localhost, made with openssl. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCerts {
  dir: string;
  ca: string;
  cert: string;
  key: string;
}

export function makeTestCerts(commonName = 'localhost'): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-tls-'));
  const f = (n: string): string => join(dir, n);
  const ossl = (args: string[]): void => {
    execFileSync('openssl', args, { stdio: 'ignore' });
  };
  ossl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=airlock test CA']);
  ossl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', `/CN=${commonName}`]);
  writeFileSync(f('ext.cnf'), `subjectAltName=DNS:localhost,IP:127.0.0.1\n`);
  ossl(['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.crt'), '-days', '2', '-extfile', f('ext.cnf')]);
  return { dir, ca: f('ca.crt'), cert: f('server.crt'), key: f('server.key') };
}
