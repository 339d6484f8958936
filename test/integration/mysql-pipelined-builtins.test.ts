/**
 * Red team (pipelined write-ahead, issue 17): a name on the MySQL allow-list of effect-free
 * built-ins that the server does not know as a built-in is a call of the database's stored
 * function of that name (MariaDB has no ANY_VALUE, REGEXP_LIKE …), which may write while the
 * statement's record is still syncing. Each allow-listed name is called on the real MariaDB
 * in a database that has no stored function: a built-in answers with its own argument-count
 * or syntax error, a non-built-in with "FUNCTION … does not exist" (ER_SP_DOES_NOT_EXIST).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PIPELINED_BUILTINS } from '../../src/audit/effect-free-mysql.js';
import { startMariaDb, type MariaDbServer } from '../harness/mariadb.js';

let maria: MariaDbServer;

beforeAll(async () => {
  maria = await startMariaDb();
  await maria.rootQuery('CREATE DATABASE builtins');
}, 120_000);

afterAll(async () => {
  await maria?.stop();
});

/** The error number of `SELECT <name>()` with `builtins` as the default database (null: it ran). */
async function callError(name: string): Promise<number | null> {
  const error = await maria.rootResults(`USE builtins; SELECT ${name}()`).then(
    () => null,
    (e: unknown) => e as { errno?: number },
  );
  return error === null ? null : (error.errno ?? -1);
}

it('every allow-listed function name is a built-in of the server, never a stored function', async () => {
  // The probe itself: MariaDB has no ANY_VALUE, so the name resolves to builtins.any_value.
  expect(await callError('any_value')).toBe(1305);
  const stored: string[] = [];
  for (const name of PIPELINED_BUILTINS) {
    // 1305 ER_SP_DOES_NOT_EXIST: resolved as builtins.<name>, a stored function's name.
    if ((await callError(name)) === 1305) stored.push(name);
  }
  expect(stored).toEqual([]);
}, 120_000);
