/**
 * The server's LOCAL INFILE request (0xFB + file name) as the response follower judges it
 * (issue 7): relayed only when the statement in progress is a LOAD DATA LOCAL naming exactly
 * that file and the client enabled LOCAL INFILE; otherwise an empty file goes up, the rest of
 * the server's answer is dropped and the client gets ERR 3948. A real server never asks for
 * another file; a compromised or impersonated one could, which only a packet-level test shows.
 */
import { describe, expect, it } from 'vitest';
import { analyzeMysql } from '../../parsers/sql/mysql/index.js';
import type { StatementAnalysis } from '../../parsers/sql/types.js';
import type { Session, SessionEvent } from '../../src/core/session-types.js';
import { Capability, Command, ServerStatus } from '../../protocols/mysql/codec/codes.js';
import { PacketReader, framePacket, type Packet } from '../../protocols/mysql/codec/framing.js';
import { decodeErr, encodeOk } from '../../protocols/mysql/codec/messages/generic.js';
import { ResponseFollower, newResponse, type Response } from '../../protocols/mysql/response.js';

const CAPS = Capability.PROTOCOL_41 | Capability.TRANSACTIONS | Capability.MULTI_RESULTS | Capability.MULTI_STATEMENTS;

function setup(sql: string, caps = CAPS | Capability.LOCAL_FILES) {
  const toClient: Buffer[] = [];
  const toServer: Buffer[] = [];
  const events: SessionEvent[] = [];
  const started: Array<{ clientSeq: number; shift: number }> = [];
  // Only record() and the reading settings of the session are used by the follower on these paths.
  const session = { record: (e: SessionEvent) => void events.push(e), sqlSettings: { standardConformingStrings: false }, setParameter: () => undefined } as unknown as Session;
  const follower = new ResponseFollower({
    session,
    capabilities: caps,
    masker: null,
    recordRows: false,
    prepared: new Map(),
    out: (b) => void toClient.push(b),
    toUpstream: (b) => void toServer.push(b),
    finished: () => undefined,
    startInfile: (_r, clientSeq, shift) => void started.push({ clientSeq, shift }),
  });
  const statements: StatementAnalysis[] = analyzeMysql(sql, { standardConformingStrings: false, searchPath: ['appdb'], serverVersion: 101106 }).statements;
  let done = false;
  const r: Response = newResponse(Command.COM_QUERY, { statements }, false, () => (done = true));
  const feed = (payload: Buffer, seq: number): void => {
    new PacketReader({ maxPacketBytes: 1 << 24 }).push(framePacket(payload, seq), (p: Packet) => follower.packet(r, p));
  };
  return { follower, r, feed, toClient, toServer, events, started, isDone: () => done };
}

const request = (file: string): Buffer => Buffer.concat([Buffer.from([0xfb]), Buffer.from(file, 'utf8')]);
const ok = (more = false): Buffer => encodeOk({ statusFlags: ServerStatus.AUTOCOMMIT | (more ? ServerStatus.MORE_RESULTS_EXISTS : 0), affectedRows: 3n }, CAPS);

describe('LOCAL INFILE request from the server', () => {
  it('the file the statement names: relayed to the client, its file expected from the next sequence id', () => {
    const t = setup("LOAD DATA LOCAL INFILE '/data/in.csv' INTO TABLE imports");
    t.feed(request('/data/in.csv'), 1);
    expect(t.toServer).toEqual([]);
    expect(t.toClient).toHaveLength(1);
    expect(t.toClient[0]?.subarray(4).toString('latin1')).toBe('\u00fb/data/in.csv');
    expect(t.started).toEqual([{ clientSeq: 2, shift: 0 }]);
    expect(t.r.phase).toBe('infile');
    // The server must not speak while the client sends its file.
    expect(() => t.feed(ok(), 2)).toThrow(/still sending its LOCAL INFILE file/);
  });

  it('after the file: the OK is the result, recorded with the file', () => {
    const t = setup("LOAD DATA LOCAL INFILE '/data/in.csv' INTO TABLE imports");
    t.feed(request('/data/in.csv'), 1);
    (t.r.infile as NonNullable<Response['infile']>).bytes = 3;
    t.r.infile?.hash.update('abc');
    t.follower.infileEnded(t.r);
    t.feed(ok(), 4);
    expect(t.isDone()).toBe(true);
    const result = t.events.find((e) => e.type === 'result');
    expect(result).toMatchObject({ type: 'result', command: 'LOAD_DATA', localInfile: { file: '/data/in.csv', bytes: 3, sha256: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad' } });
  });

  const refused: Array<[string, string, string, number, RegExp]> = [
    ['another file than the statement names', "LOAD DATA LOCAL INFILE '/data/in.csv' INTO TABLE imports", '/etc/shadow', CAPS | Capability.LOCAL_FILES, /other than the one the statement names/],
    ['a file during a statement that is no LOAD DATA LOCAL', 'SELECT * FROM imports', '/etc/shadow', CAPS | Capability.LOCAL_FILES, /no allowed LOAD DATA LOCAL statement/],
    ['a file during a server-side LOAD DATA', "LOAD DATA INFILE '/data/in.csv' INTO TABLE imports", '/data/in.csv', CAPS | Capability.LOCAL_FILES, /no allowed LOAD DATA LOCAL statement/],
    ['a file from a client that did not enable LOCAL INFILE', "LOAD DATA LOCAL INFILE '/data/in.csv' INTO TABLE imports", '/data/in.csv', CAPS, /did not enable it/],
    ['a prefix of the named file', "LOAD DATA LOCAL INFILE '/data/in.csv' INTO TABLE imports", '/data/in.cs', CAPS | Capability.LOCAL_FILES, /other than the one/],
  ];
  for (const [name, sql, file, caps, why] of refused) {
    it(`refuses ${name}: an empty file goes up, the client gets ERR 3948`, () => {
      const t = setup(sql, caps);
      t.feed(request(file), 1);
      expect(t.toServer).toHaveLength(1);
      expect(t.toServer[0]?.equals(framePacket(Buffer.alloc(0), 2))).toBe(true);
      expect(t.toClient).toEqual([]);
      t.feed(ok(), 3);
      expect(t.toClient).toHaveLength(1);
      const err = decodeErr((t.toClient[0] as Buffer).subarray(4));
      expect(err.code).toBe(3948);
      expect(err.message).toMatch(why);
      expect(t.isDone()).toBe(true);
      expect(t.events.some((e) => e.type === 'protocol' && why.test(e.detail))).toBe(true);
    });
  }

  it('in a multi-statement text, only the LOAD DATA LOCAL statement\'s own result may ask', () => {
    const t = setup("SELECT 1; LOAD DATA LOCAL INFILE '/data/in.csv' INTO TABLE imports");
    t.feed(request('/data/in.csv'), 1);
    expect(t.toServer).toHaveLength(1);
    const u = setup("SELECT 1; LOAD DATA LOCAL INFILE '/data/in.csv' INTO TABLE imports");
    u.feed(ok(true), 1);
    u.feed(request('/data/in.csv'), 2);
    expect(u.toServer).toEqual([]);
    expect(u.started).toEqual([{ clientSeq: 3, shift: 0 }]);
  });
});
