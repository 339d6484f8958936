/**
 * MySQL driver fidelity, the pure parts (issue 26): ordinary statements are read (the corpus),
 * literals and spellings drivers send (X'…', b'…', `""`, type synonyms, `SET x = ?`), syntax
 * errors known as such, which settings a SET changes, and MariaDB's extended capabilities and
 * column metadata on the wire (expected bytes written out by hand from the MariaDB protocol pages).
 */
import { describe, expect, it } from 'vitest';
import { analyzeMysql } from '../../parsers/sql/mysql/index.js';
import { mysqlSettingChanges, userVariablesTouched } from '../../parsers/sql/mysql/settings.js';
import { versionNumber } from '../../protocols/mysql/listener.js';
import type { SqlSessionSettings, StatementAnalysis } from '../../parsers/sql/types.js';
import { ORDINARY_MYSQL } from './corpus/mysql-ordinary.js';
import { Capability, MariadbCapability } from '../../protocols/mysql/codec/codes.js';
import { decodeHandshakeResponse, decodeHandshakeV10, encodeHandshakeResponse41, encodeHandshakeV10, encodeSslRequest } from '../../protocols/mysql/codec/messages/handshake.js';
import { decodeColumnDefinition, encodeColumnDefinition } from '../../protocols/mysql/codec/messages/resultset.js';
import { charsetOfCollation, statementReaderFor } from '../../protocols/mysql/charsets.js';

const DEFAULT: SqlSessionSettings = { standardConformingStrings: false, searchPath: ['appdb'] };
const all = (sql: string): StatementAnalysis[] => analyzeMysql(sql, DEFAULT).statements;
const one = (sql: string): StatementAnalysis => all(sql)[0] as StatementAnalysis;
const names = (refs: StatementAnalysis['reads']): string[] => refs.map((r) => r.name);
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('ordinary statements are read', () => {
  it('every statement of the corpus (mariadb-dump output, driver suites, DDL/DCL)', () => {
    const unread = ORDINARY_MYSQL.filter((sql) => all(sql).some((s) => s.unparsed));
    expect(unread).toEqual([]);
  });

  it("hexadecimal and bit literals are values: X'…' hides no quote, and what is around it is read", () => {
    expect(one("SELECT X'68656c6c6f' AS result FROM users").reads.map((r) => r.name)).toEqual(['users']);
    expect(one("SELECT _binary X'0001feff', b'0101' FROM users WHERE id = x'27'").unparsed).toBe(false);
    // A quote byte's hex (27) is two digits, never a quote: the DELETE after it is seen.
    expect(all("SELECT X'27'; DELETE FROM users").map((s) => s.kinds[0])).toEqual(['select', 'delete']);
    expect(one("INSERT INTO blobs (b) VALUES (X'00ff')").writes.map((r) => r.name)).toEqual(['blobs']);
  });

  it('`""` under ANSI_QUOTES (an empty identifier) does not make the statement unreadable', () => {
    expect(one('SELECT ""').unparsed).toBe(false);
    expect(one('SET sql_mode=""').kinds).toEqual(['set']);
  });

  it('type synonyms are read only where they are types, never inside a quoted name', () => {
    const s = one('CREATE TABLE `long` (`int8` long, b int8, c serial, `serial` int)');
    expect(s.unparsed).toBe(false);
    expect(names(s.writes)).toEqual(['long']);
    expect(one('CREATE TEMPORARY TABLE t (l long)').kinds).toEqual(['create']);
  });

  it('account and routine statements are read from their tokens, and nothing else hides there', () => {
    expect(one("DROP USER IF EXISTS 'u'@'%'").kinds).toEqual(['drop']);
    expect(one('DROP PROCEDURE IF EXISTS p').kinds).toEqual(['drop']);
    expect(one("CREATE USER u2 IDENTIFIED VIA ed25519 USING PASSWORD('pw')").kinds).toEqual(['create']);
    expect(one("ALTER USER 'u'@'%' IDENTIFIED BY 'pw'").kinds).toEqual(['alter']);
    expect(one('ALTER TABLE `t1` DISABLE KEYS').writes.map((r) => r.name)).toEqual(['t1']);
    expect(one('DROP USER (SELECT 1)').unparsed).toBe(true);
    expect(one("CREATE USER u IDENTIFIED BY PASSWORD((SELECT ssn FROM users))").unparsed).toBe(true);
  });

  it('a parameter marker as a SET value (a prepared SET)', () => {
    expect(one('SET character_set_results = ?').kinds).toEqual(['set']);
    expect(one("SET @a = ?, @b = '?'").kinds).toEqual(['set']);
    expect(one('SET `?` = ?').unparsed).toBe(true);
  });
});

describe('SET STATEMENT … FOR <statement> (MariaDB; the connector\'s timeout option)', () => {
  it('is read as its inner statement when every setting is a harmless limit given a number or DEFAULT', () => {
    const sel = one('SET STATEMENT max_statement_time=0.1 FOR SELECT id, name FROM items WHERE id = 1');
    expect(sel).toMatchObject({ kinds: ['select'], unparsed: false, text: 'SET STATEMENT max_statement_time=0.1 FOR SELECT id, name FROM items WHERE id = 1' });
    expect(names(sel.reads)).toEqual(['items']);
    expect(sel.outputs?.map((o) => o.name)).toEqual(['id', 'name']);
    const drop = one('set statement max_statement_time=100, lock_wait_timeout = DEFAULT for DROP TABLE t');
    expect(drop).toMatchObject({ kinds: ['drop'], unparsed: false });
    expect(names(drop.writes)).toEqual(['t']);
    expect(one('SET STATEMENT max_statement_time=1 FOR DELETE FROM t')).toMatchObject({ kinds: ['delete'], withoutWhere: true });
  });

  it('stays unparsed when a setting changes how text is read, is not on the list, or is not a plain number', () => {
    for (const sql of [
      "SET STATEMENT sql_mode='ANSI_QUOTES' FOR SELECT \"a\" FROM t",
      'SET STATEMENT sql_mode=DEFAULT FOR SELECT 1',
      'SET STATEMENT character_set_client=koi8r FOR SELECT 1',
      'SET STATEMENT max_statement_time=1, collation_connection=DEFAULT FOR SELECT 1',
      'SET STATEMENT sql_log_bin=0 FOR DELETE FROM t WHERE id = 1',
      'SET STATEMENT max_statement_time=(SELECT secret FROM s) FOR SELECT 1',
      'SET STATEMENT max_statement_time=@v FOR SELECT 1',
      "SET STATEMENT max_statement_time='1' FOR SELECT 1",
      'SET STATEMENT max_statement_time=1 /* FOR */ FOR SELECT 1',
      'SET STATEMENT max_statement_time=1\u00a0FOR SELECT 1',
      'SET STATEMENT max_statement_time=1 FOR SET NAMES koi8r',
      'SET STATEMENT max_statement_time=1 FOR SET sql_mode=ANSI_QUOTES',
      'SET STATEMENT max_statement_time=1 FOR USE other',
      'SET STATEMENT max_statement_time=1 FOR KILL 5',
      "SET STATEMENT max_statement_time=1 FOR LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE t",
      'SET STATEMENT max_statement_time=1 FOR SELEC 1',
      'SET STATEMENT max_statement_time=1 FOR',
    ]) {
      expect(all(sql).map((s) => s.unparsed), sql).toEqual([true]);
    }
    expect(mysqlSettingChanges(one("SET STATEMENT sql_mode='ANSI_QUOTES' FOR SELECT 1")).sqlMode).toBe(true);
  });
});

describe('syntax errors are told from text airlock cannot read', () => {
  const cases: Array<[string, string]> = [
    ['SELEC 1', 'no statement starts with SELEC'],
    ["SELECT 'abc", 'an unterminated string'],
    ['SELECT `abc', 'an unterminated quoted identifier'],
    ['SELECT 1 /* never closed', 'an unterminated comment'],
    ["SELECT X'0G'", 'a malformed hexadecimal literal'],
    ["SELECT X'123'", 'a malformed hexadecimal literal'],
    ["SELECT b'012'", 'a malformed bit-value literal'],
    ["'x'", 'no statement starts with a string'],
  ];
  for (const [sql, why] of cases) {
    it(`${sql} → ${why}`, () => {
      const s = one(sql);
      expect(s.unparsed).toBe(true);
      expect(s.syntaxError).toBe(why);
    });
  }

  it('a statement the reader lacks is unparsed, not a syntax error', () => {
    expect(one('OPTIMIZE TABLE t1')).toMatchObject({ unparsed: true });
    expect(one('OPTIMIZE TABLE t1').syntaxError).toBeUndefined();
    expect(one('lbl: BEGIN END').syntaxError).toBeUndefined();
  });

  it('a syntax error in one ANSI_QUOTES reading only is not a syntax error', () => {
    // "a' …: a string in one reading, an identifier then an unterminated string in the other.
    expect(one(`SELECT "a'" FROM t`).syntaxError).toBeUndefined();
  });
});

describe('which settings a statement changes', () => {
  const changes = (sql: string): ReturnType<typeof mysqlSettingChanges> => mysqlSettingChanges(one(sql));
  it('reading a setting into a user variable changes nothing', () => {
    expect(changes('SET @a = @@character_set_client')).toMatchObject({ sqlMode: false, clientCharset: undefined });
    expect(changes('SET @saved_cs_client = @@character_set_client, @m = @@sql_mode')).toMatchObject({ sqlMode: false, clientCharset: undefined });
  });
  it('the character set named, or unknown', () => {
    expect(changes('SET NAMES utf8mb4').clientCharset).toBe('utf8mb4');
    expect(changes("SET NAMES 'koi8r' COLLATE 'koi8r_bin'").clientCharset).toBe('koi8r');
    expect(changes('SET CHARACTER SET cp1251').clientCharset).toBe('cp1251');
    expect(changes('SET character_set_client = utf8mb4').clientCharset).toBe('utf8mb4');
    expect(changes('SET @@session.character_set_client = latin1').clientCharset).toBe('latin1');
    expect(changes('SET character_set_client = @saved_cs_client').clientCharset).toBeNull();
    expect(changes('SET NAMES DEFAULT').clientCharset).toBeNull();
    expect(changes('SET GLOBAL sql_mode = \'\', character_set_client = koi8r').clientCharset).toBeNull();
    expect(changes('SET character_set_results = utf8mb4').clientCharset).toBeUndefined();
    // Under NO_BACKSLASH_ESCAPES the string ends at the second quote and the assignment is real.
    expect(changes("SET @x = 'a\\', character_set_client = koi8r -- '").clientCharset).toBeNull();
    expect(changes('SET @x = "a\\", sql_mode = \'\' -- "').sqlMode).toBe(true);
  });
  it('sql_mode, however spelled', () => {
    expect(changes("SET sql_mode = 'ANSI_QUOTES'").sqlMode).toBe(true);
    expect(changes("SET @@SESSION.sql_mode = ''").sqlMode).toBe(true);
    expect(changes("SET SESSION sql_mode = ''").sqlMode).toBe(true);
  });
  it('a statement whose effects are unknown may change what it mentions', () => {
    expect(changes("EXECUTE IMMEDIATE 'SET NAMES sjis'")).toMatchObject({ sqlMode: false, clientCharset: null, savesCharsetTo: [] });
  });
});

describe('a character set saved in a user variable (mysqldump)', () => {
  const changes = (sql: string): ReturnType<typeof mysqlSettingChanges> => mysqlSettingChanges(one(sql));
  it('the save and the restore are read; anything else about the variable is not', () => {
    expect(changes('/*!40101 SET @saved_cs_client     = @@character_set_client */').savesCharsetTo).toEqual(['saved_cs_client']);
    expect(changes('SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT').savesCharsetTo).toEqual(['old_character_set_client']);
    expect(changes('/*!40101 SET character_set_client = @saved_cs_client */')).toMatchObject({ clientCharset: null, clientCharsetFrom: 'saved_cs_client' });
    expect(changes("SET @s = CONCAT(@@character_set_client, '')").savesCharsetTo).toEqual([]);
    expect(changes('SET @s = @@global.character_set_client').savesCharsetTo).toEqual([]);
    // Saved beside a change in one statement: which set it holds depends on the order.
    expect(changes('SET NAMES koi8r, @s = @@character_set_client').savesCharsetTo).toEqual([]);
    expect(changes("SET character_set_client = CONCAT(@s, '')").clientCharsetFrom).toBeUndefined();
  });

  it('which user variables a statement may write', () => {
    expect(userVariablesTouched(one("SELECT @s := 'gbk'"))).toEqual(new Set(['s']));
    expect(userVariablesTouched(one("SELECT 'x' INTO @S"))).toEqual(new Set(['s']));
    // A view may call a stored function that sets any variable.
    expect(userVariablesTouched(one('SELECT * FROM some_view'))).toBe('any');
    expect(userVariablesTouched(one('SET @S = @t'))).toEqual(new Set(['s', 't']));
    // A restore only reads its variable; naming it again may write it.
    expect(userVariablesTouched(one('SET character_set_client = @saved_cs_client'))).toEqual(new Set());
    expect(userVariablesTouched(one("SET character_set_client = @s, @s = 'gbk'"))).toEqual(new Set(['s']));
    // Unreadable (the parser lacks @'quoted' names): any variable.
    expect(userVariablesTouched(one("SET @'s' = 'gbk'"))).toBe('any');
    expect(userVariablesTouched(one('CREATE TABLE t (a int)'))).toEqual(new Set());
    // Rows written may fire a trigger; a call runs a routine: any variable.
    expect(userVariablesTouched(one("INSERT INTO t VALUES ('x')"))).toBe('any');
    expect(userVariablesTouched(one('CALL p()'))).toBe('any');
    expect(userVariablesTouched(one('OPTIMIZE TABLE t'))).toBe('any');
  });

  it('the server version as executable comments compare it', () => {
    expect(versionNumber('5.5.5-10.11.19-MariaDB-1:10.11.19+maria~deb12')).toBe('101119');
    expect(versionNumber('10.6.7-MariaDB')).toBe('100607');
    expect(versionNumber('8.0.36')).toBe('80036');
    expect(versionNumber('8.0.0-airlock')).toBe('80000');
    expect(versionNumber('weird')).toBe('');
  });
});

describe('client character sets', () => {
  it('reads the single-byte sets and UTF-8 exactly, nothing multibyte', () => {
    expect(charsetOfCollation(7)).toBe('koi8r');
    expect(charsetOfCollation(51)).toBe('cp1251');
    expect(charsetOfCollation(224)).toBe('utf8mb4');
    expect(charsetOfCollation(255)).toBe('utf8mb4'); // MySQL 8's default, utf8mb4_0900_ai_ci
    expect(charsetOfCollation(248)).toBeNull(); // MySQL 8's gb18030_chinese_ci
    expect(charsetOfCollation(28)).toBeNull(); // gbk_chinese_ci
    expect(charsetOfCollation(13)).toBeNull(); // sjis_japanese_ci
    expect(statementReaderFor('koi8r')?.(Buffer.from([0xf0, 0xd2, 0xc9, 0xd7, 0xc5, 0xd4]))).toBe('Привет');
    expect(statementReaderFor('cp1251')?.(Buffer.from([0xcf, 0xf0, 0xe8, 0xe2, 0xe5, 0xf2]))).toBe('Привет');
    expect(statementReaderFor('gbk')).toBeNull();
    expect(statementReaderFor(null)).toBeNull();
  });

  it("a single-byte set's no-break space separates words, as the server's lexer has it", () => {
    // latin1: SELECT 1<A0>FROM users — MariaDB runs it as SELECT 1 FROM users.
    const text = statementReaderFor('latin1')?.(Buffer.from([...Buffer.from('SELECT 1'), 0xa0, ...Buffer.from('FROM users')])) ?? '';
    expect(analyzeMysql(text, DEFAULT).statements[0]?.reads.map((r) => r.name)).toEqual(['users']);
    expect(statementReaderFor('cp866')?.(Buffer.from([0x41, 0xff, 0x42]))).toBe('A B');
    // In UTF-8 it is part of a name, there as in the server.
    expect(statementReaderFor('utf8mb4')?.(Buffer.from('a\u00a0b'))).toBe('a\u00a0b');
  });
});

describe('MariaDB extended capabilities on the wire', () => {
  const scramble = Buffer.from('abcdefghijklmnopqrst');
  it('a greeting that offers them clears CLIENT_MYSQL and carries them in the last 4 reserved bytes', () => {
    const caps = Capability.LONG_PASSWORD | Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH;
    const g = encodeHandshakeV10({ serverVersion: 'v', connectionId: 1, authPluginData: scramble, capabilities: caps, mariadbCapabilities: MariadbCapability.EXTENDED_METADATA, characterSet: 45, statusFlags: 2, authPluginName: 'p' });
    // 0a 'v' 00 | id | scramble[0..8] 00 | caps low (0x8200: LONG_PASSWORD cleared) | 2d | 0200 | caps high (0x0008) | 15 | 6 zeros | 08000000
    expect(g.subarray(0, 34)).toEqual(hex(`0a 7600 01000000 6162636465666768 00 0082 2d 0200 0800 15 000000000000 08000000`));
    const d = decodeHandshakeV10(g);
    expect(d.capabilities & Capability.LONG_PASSWORD).toBe(0);
    expect(d.mariadbCapabilities).toBe(MariadbCapability.EXTENDED_METADATA);
    // Without them, a MySQL greeting as before: CLIENT_MYSQL set, the bytes zero.
    expect(decodeHandshakeV10(encodeHandshakeV10({ serverVersion: 'v', connectionId: 1, authPluginData: scramble, capabilities: caps, characterSet: 45, statusFlags: 2, authPluginName: 'p' })).mariadbCapabilities).toBe(0);
  });

  it('a response carries them in the last 4 of its 23 reserved bytes, only with CLIENT_MYSQL cleared', () => {
    const caps = Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION;
    const r = encodeHandshakeResponse41({ capabilities: caps, maxPacketSize: 0, characterSet: 45, username: 'u', authResponse: Buffer.alloc(0), database: null, authPluginName: null, attributes: [], mariadbCapabilities: 8 });
    expect(r).toEqual(hex(`00820000 00000000 2d ${'00'.repeat(19)} 08000000 7500 00`));
    expect(decodeHandshakeResponse(r)).toMatchObject({ type: 'HandshakeResponse41', mariadbCapabilities: 8 });
    // The same bytes from a client that keeps CLIENT_MYSQL are filler.
    const mysqlStyle = Buffer.from(r);
    mysqlStyle[0] = (mysqlStyle[0] as number) | Capability.LONG_PASSWORD;
    expect(decodeHandshakeResponse(mysqlStyle)).toMatchObject({ mariadbCapabilities: 0 });
    expect(encodeSslRequest(caps, 0, 45, 8).subarray(28)).toEqual(hex('08000000'));
    expect(decodeHandshakeResponse(encodeSslRequest(caps, 0, 45, 8))).toMatchObject({ type: 'SSLRequest', mariadbCapabilities: 8 });
  });

  it('a column definition with the extended metadata block (a JSON column: longtext, format json)', () => {
    // def | appdb | docs | docs | doc | doc | block: 00 'longtext' 01 'json' | 0c | 2d00 | ffffffff | fc | 9000 | 00 | 0000
    const payload = hex(`03646566 056170706462 04646f6373 04646f6373 03646f63 03646f63
      10 00 086c6f6e6774657874 01 046a736f6e
      0c 2d00 ffffffff fc 9000 00 0000`);
    const c = decodeColumnDefinition(payload, true);
    expect(c).toMatchObject({ schema: 'appdb', orgTable: 'docs', orgName: 'doc', extendedTypeName: 'longtext', extendedFormat: 'json', columnType: 0xfc, characterSet: 45 });
    expect(encodeColumnDefinition(c, true)).toEqual(payload);
    // Read without the capability, the block is taken for the fixed fields: refused, never misread.
    expect(() => decodeColumnDefinition(payload, false)).toThrow();
  });
});
