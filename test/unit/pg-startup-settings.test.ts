import { describe, expect, it } from 'vitest';
import { parseOptions, passedStartupSettings, splitOptions } from '../../protocols/postgres/startup-settings.js';
import { FrameReader, type Frame } from '../../protocols/postgres/codec/framing.js';
import { MessageCode } from '../../protocols/postgres/codec/codes.js';

describe('startup options (pg_split_opts)', () => {
  it('splits on whitespace; a backslash takes the next character', () => {
    expect(splitOptions('  -c a=b\t--x-y=1\\ 2 -c\\ d ')).toEqual(['-c', 'a=b', '--x-y=1 2', '-c d']);
    expect(parseOptions('-c search_path=foo -csearch_path=bar --statement-timeout=5s')).toEqual([
      ['search_path', 'foo'], ['search_path', 'bar'], ['statement_timeout', '5s'],
    ]);
  });

  it('passes listed settings from options and plain parameters; plain parameters win', () => {
    expect(passedStartupSettings({ user: 'u', database: 'd', options: '-c search_path=a -c DateStyle=ISO', search_path: 'b', replication: 'false' }))
      .toEqual({ search_path: 'b', datestyle: 'ISO' });
  });

  it('refuses by name what is not listed, whatever the spelling', () => {
    for (const [params, name] of [
      [{ options: '-c role=postgres' }, '"role"'],
      [{ options: '-c ROLE=postgres' }, '"role"'],
      [{ options: '--session-authorization=postgres' }, '"session_authorization"'],
      [{ options: '-c\\ default_transaction_read_only=off' }, 'default_transaction_read_only"'],
      [{ options: '-c' }, '"-c"'],
      [{ options: '-c nothing' }, '"nothing"'],
      [{ options: '-d 5' }, '"-d"'],
      [{ Session_Preload_Libraries: 'x' }, '"session_preload_libraries"'],
      [{ replication: 'database' }, '"replication"'],
    ] as Array<[Record<string, string>, string]>) {
      expect(() => passedStartupSettings(params), JSON.stringify(params)).toThrow(name);
    }
  });
});

describe('a Terminate where a startup packet belongs', () => {
  it('is a Terminate frame at every byte boundary, and a bad length is a protocol error', () => {
    const bytes = Buffer.from([0x58, 0, 0, 0, 4]);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const r = new FrameReader({ maxMessageBytes: 1 << 20, maxStartupBytes: 10_000, startup: true });
      const seen: Frame[] = [];
      r.push(bytes.subarray(0, cut), (f) => seen.push(f));
      r.push(bytes.subarray(cut), (f) => seen.push(f));
      expect(seen.map((f) => f.type)).toEqual([MessageCode.Terminate]);
    }
    const r = new FrameReader({ maxMessageBytes: 1 << 20, maxStartupBytes: 10_000, startup: true });
    expect(() => r.push(Buffer.from([0x58, 0, 0, 0, 5]), () => undefined)).toThrow(/invalid length 5/);
  });
});
