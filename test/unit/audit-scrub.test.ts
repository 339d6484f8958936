import { describe, expect, it } from 'vitest';
import { scrubStatement } from '../../src/audit/index.js';

const cases: Array<[string, string, string]> = [
  ['postgres ALTER ROLE', "ALTER ROLE app PASSWORD 'hunter2'", "ALTER ROLE app PASSWORD '***'"],
  ['postgres WITH ENCRYPTED PASSWORD', "CREATE ROLE app WITH LOGIN ENCRYPTED PASSWORD 'hunter2' VALID UNTIL '2030-01-01'", "CREATE ROLE app WITH LOGIN ENCRYPTED PASSWORD '***' VALID UNTIL '2030-01-01'"],
  ['postgres CREATE USER WITH PASSWORD', "create user bob with password 'hunter2'", "create user bob with password '***'"],
  ['doubled quote inside', "ALTER USER a PASSWORD 'hun''ter2' LOGIN", "ALTER USER a PASSWORD '***' LOGIN"],
  ['E-string with escapes', "ALTER ROLE a PASSWORD E'hun\\'ter2'", "ALTER ROLE a PASSWORD '***'"],
  ['dollar-quoted', 'ALTER ROLE a PASSWORD $$hunter2$$', "ALTER ROLE a PASSWORD '***'"],
  ['tagged dollar quote', 'ALTER ROLE a PASSWORD $pw$hun$$ter2$pw$ CONNECTION LIMIT 1', "ALTER ROLE a PASSWORD '***' CONNECTION LIMIT 1"],
  ['SCRAM verifier', "ALTER ROLE a PASSWORD 'SCRAM-SHA-256$4096:abc$def:ghi'", "ALTER ROLE a PASSWORD '***'"],
  ['no space before literal', "ALTER ROLE a PASSWORD'hunter2'", "ALTER ROLE a PASSWORD'***'"],
  ['mysql IDENTIFIED BY', "CREATE USER 'u'@'%' IDENTIFIED BY 'hunter2'", "CREATE USER 'u'@'%' IDENTIFIED BY '***'"],
  ['mysql double-quoted', 'ALTER USER u IDENTIFIED BY "hunter2"', "ALTER USER u IDENTIFIED BY '***'"],
  ['mysql IDENTIFIED WITH plugin BY', "CREATE USER u IDENTIFIED WITH mysql_native_password BY 'hunter2'", "CREATE USER u IDENTIFIED WITH mysql_native_password BY '***'"],
  ['mysql IDENTIFIED WITH plugin AS hash', "CREATE USER u IDENTIFIED WITH caching_sha2_password AS '$A$005$hash'", "CREATE USER u IDENTIFIED WITH caching_sha2_password AS '***'"],
  ['mysql IDENTIFIED BY PASSWORD hash', "GRANT ALL ON *.* TO u IDENTIFIED BY PASSWORD '*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9'", "GRANT ALL ON *.* TO u IDENTIFIED BY PASSWORD '***'"],
  ['mysql backslash escape', "CREATE USER u IDENTIFIED BY 'hun\\'ter2' ACCOUNT LOCK", "CREATE USER u IDENTIFIED BY '***' ACCOUNT LOCK"],
  ['mysql charset introducer', "ALTER USER u IDENTIFIED BY _utf8mb4'hunter2'", "ALTER USER u IDENTIFIED BY '***'"],
  ['SET PASSWORD =', "SET PASSWORD = 'hunter2'", "SET PASSWORD = '***'"],
  ['SET PASSWORD FOR user = PASSWORD()', "SET PASSWORD FOR 'u'@'localhost' = PASSWORD('hunter2')", "SET PASSWORD FOR 'u'@'localhost' = PASSWORD('***')"],
  ['SET PASSWORD FOR user = literal', "SET PASSWORD FOR u = 'hunter2'", "SET PASSWORD FOR u = '***'"],
  ['mariadb VIA USING PASSWORD()', "CREATE USER u IDENTIFIED VIA ed25519 USING PASSWORD('hunter2')", "CREATE USER u IDENTIFIED VIA ed25519 USING PASSWORD('***')"],
  ['replication MASTER_PASSWORD', "CHANGE MASTER TO MASTER_HOST='h', MASTER_PASSWORD='hunter2'", "CHANGE MASTER TO MASTER_HOST='h', MASTER_PASSWORD='***'"],
  ['inside a longer statement', "BEGIN; ALTER ROLE a PASSWORD 'hunter2'; SELECT 1", "BEGIN; ALTER ROLE a PASSWORD '***'; SELECT 1"],
  ['column assignment', "UPDATE users SET password = 'hunter2' WHERE id = 1", "UPDATE users SET password = '***' WHERE id = 1"],
  ['quoted column assignment', 'UPDATE users SET "password" = \'hunter2\'', 'UPDATE users SET "password" = \'***\''],
  ['hashing function around the literal', "UPDATE users SET password = crypt('hunter2', gen_salt('bf'))", "UPDATE users SET password = crypt('***', gen_salt('bf'))"],
  ['user mapping options', "CREATE USER MAPPING FOR u SERVER s OPTIONS (user 'x', password 'hunter2')", "CREATE USER MAPPING FOR u SERVER s OPTIONS (user 'x', password '***')"],
  ['connection string', "CREATE SUBSCRIPTION s CONNECTION 'host=h user=u password=hunter2 dbname=d' PUBLICATION p", "CREATE SUBSCRIPTION s CONNECTION 'host=h user=u password=*** dbname=d' PUBLICATION p"],
  ['password after a comment with a quote', "-- it's a reset\nALTER ROLE a PASSWORD 'hunter2'", "-- it's a reset\nALTER ROLE a PASSWORD '***'"],
  ['mysql -- without space is not a comment there', "SELECT 1--1, PASSWORD('hunter2')", "SELECT 1--1, PASSWORD('***')"],
];

describe('scrubStatement', () => {
  it.each(cases)('%s', (_name, input, expected) => {
    expect(scrubStatement(input)).toBe(expected);
    expect(scrubStatement(input)).not.toMatch(/hunter2|hun.ter2|ter2/);
  });

  it.each([
    'SELECT 1',
    "SELECT 'password' AS label, 'x'",
    "SELECT * FROM users WHERE name = 'password reset'",
    'ALTER ROLE a PASSWORD NULL',
    "SELECT password_hash FROM users WHERE id = 'x'",
    'CREATE TABLE t (password text)',
  ])('leaves %s alone', (text) => {
    expect(scrubStatement(text)).toBe(text);
  });

  it('is idempotent', () => {
    for (const [, input] of cases) {
      const once = scrubStatement(input);
      expect(scrubStatement(once)).toBe(once);
    }
  });

  it('an unterminated literal after PASSWORD is cut to the end', () => {
    expect(scrubStatement("ALTER ROLE a PASSWORD 'hunter2")).toBe("ALTER ROLE a PASSWORD '***'");
  });
});

describe('guarded secrets (issue 25)', () => {
  it('every form of a guarded secret is cut from every recorded string, until released', async () => {
    const { guardSecrets, scrubRecorded } = await import('../../src/audit/scrub.js');
    const { canonicalScrubbedJson } = await import('../../src/audit/canonical.js');
    const key = 'sk-guarded/0123456789+abc';
    const event = { type: 'x', body: `a ${encodeURIComponent(key).toLowerCase()} b`, nested: [{ h: Buffer.from(`k=${key}`).toString('base64') }], upper: key.toUpperCase() };
    const release = guardSecrets([key]);
    const again = guardSecrets([key]);
    const json = canonicalScrubbedJson(event, scrubRecorded);
    expect(json).not.toContain(encodeURIComponent(key).toLowerCase());
    expect(json).not.toContain(key.toUpperCase());
    expect(json).not.toContain(Buffer.from(`k=${key}`).toString('base64').slice(4, -4));
    expect(json.match(/\[redacted\]/g)?.length).toBe(3);
    release();
    release();
    // Another session still holds it.
    expect(scrubRecorded(key)).toBe('[redacted]');
    again();
    expect(scrubRecorded(key)).toBe(key);
  });
});

describe('the logger while a secret is guarded (issue 25)', () => {
  it('cuts every form from the message, the fields and an error', async () => {
    const { guardSecrets } = await import('../../src/audit/scrub.js');
    const { createLogger } = await import('../../src/util/log.js');
    const { Writable } = await import('node:stream');
    const key = 'sk-logged/0123456789+abc';
    let out = '';
    const sink = new Writable({ write(chunk: Buffer, _enc, done) { out += chunk.toString(); done(); } });
    const logger = createLogger('info', sink);
    const release = guardSecrets([key]);
    const { Secret } = await import('../../src/secrets/index.js');
    logger.info({ body: `echo ${encodeURIComponent(key)}`, nested: { h: [key.toUpperCase()] }, err: new Error(`upstream said ${key}`), held: new Secret('do-not-log-me') }, `message ${Buffer.from(key).toString('hex')}`);
    release();
    logger.info({ after: 'released' }, 'plain');
    await new Promise((r) => setImmediate(r));
    expect(out).not.toContain(encodeURIComponent(key));
    expect(out).not.toContain(key.toUpperCase());
    expect(out).not.toContain(key);
    expect(out).not.toContain(Buffer.from(key).toString('hex'));
    // body, nested, message, and the error's message and the first line of its stack.
    expect(out.match(/\[redacted\]/g)?.length).toBe(5);
    expect(out).toContain('"stack"');
    expect(out).toContain('released');
    // A Secret still serialises as itself, not as its fields.
    expect(out).not.toContain('do-not-log-me');
  });
});
