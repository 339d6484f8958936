// Expected bytes come from pg-protocol (its serializer for client messages, its Parser for
// server messages) or from hand-written hex; never from the encoder under test alone.
import { describe, expect, it } from 'vitest';
import { serialize } from 'pg-protocol';
import { Parser } from 'pg-protocol/dist/parser.js';
import { FrameReader, type Frame } from '../../protocols/postgres/codec/framing.js';
import * as fe from '../../protocols/postgres/codec/frontend.js';
import * as be from '../../protocols/postgres/codec/backend.js';
import { AirlockError } from '../../src/util/errors.js';
import { Writer } from '../../protocols/postgres/codec/writer.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function oneFrame(bytes: Buffer, startup = false): Frame {
  const frames: Frame[] = [];
  const r = new FrameReader({ maxMessageBytes: 1 << 20, maxStartupBytes: 10_000, startup });
  r.push(bytes, (f) => frames.push(f));
  expect(frames).toHaveLength(1);
  expect(r.buffered).toBe(0);
  return frames[0] as Frame;
}

/** pg-protocol's own reading of server bytes, as plain records. */
function pgParse(bytes: Buffer): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  new Parser().parse(bytes, (m) => out.push({ ...(m as object), ...(m instanceof Error ? { message: m.message } : {}) }));
  return out;
}

function fatalProtocol(fn: () => unknown): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(AirlockError);
  expect((caught as AirlockError).code).toBe('AIRLOCK_PROTOCOL');
  expect((caught as AirlockError).fatal).toBe(true);
}

describe('frontend: startup phase', () => {
  it('decodes SSLRequest, GSSENCRequest, CancelRequest and StartupMessage', () => {
    expect(fe.decodeFrontend(oneFrame(serialize.requestSsl(), true))).toEqual({ type: 'SSLRequest' });
    expect(fe.decodeStartup(oneFrame(hex('00000008 04d21630'), true).payload)).toEqual({ type: 'GSSENCRequest' });
    expect(fe.decodeStartup(oneFrame(serialize.cancel(4242, -7), true).payload)).toEqual({ type: 'CancelRequest', pid: 4242, secret: -7 });
    const m = fe.decodeStartup(oneFrame(serialize.startup({ user: 'alice', database: 'db', application_name: 'psql' }), true).payload);
    expect(m).toEqual({ type: 'StartupMessage', protocolVersion: 196608, parameters: { user: 'alice', database: 'db', application_name: 'psql', client_encoding: 'UTF8' } });
  });

  it('encodes the same bytes as pg-protocol / the spec', () => {
    expect(fe.encodeSSLRequest().equals(serialize.requestSsl())).toBe(true);
    expect(fe.encodeGSSENCRequest().toString('hex')).toBe('0000000804d21630');
    expect(fe.encodeCancelRequest(4242, -7).equals(serialize.cancel(4242, -7))).toBe(true);
    // pg-protocol appends client_encoding=UTF8 itself.
    const params = { user: 'bob', database: 'x' };
    expect(fe.encodeStartupMessage({ ...params, client_encoding: 'UTF8' }).equals(serialize.startup(params))).toBe(true);
    expect(be.SSL_ACCEPT.toString()).toBe('S');
    expect(be.SSL_REFUSE.toString()).toBe('N');
  });

  it('keeps "__proto__" an ordinary parameter and refuses duplicates and other major versions', () => {
    const m = fe.decodeStartup(hex('00030000 5f5f70726f746f5f5f00 7800 00'));
    expect(m.type === 'StartupMessage' && m.parameters['__proto__']).toBe('x');
    fatalProtocol(() => fe.decodeStartup(hex('00030000 7500610075006200 00')));
    fatalProtocol(() => fe.decodeStartup(hex('00020000 7500610000')));
    fatalProtocol(() => fe.decodeStartup(hex('00030000 75006100'))); // no terminator
    fatalProtocol(() => fe.decodeStartup(hex('04d2162f 00'))); // SSLRequest with trailing byte
    fatalProtocol(() => fe.decodeStartup(hex('04d2162e 00000001'))); // CancelRequest cut short
  });
});

describe('frontend: typed messages', () => {
  const cases: [string, Buffer, fe.FrontendMessage][] = [
    ['Query', serialize.query('select 1'), { type: 'Query', sql: 'select 1' }],
    ['Parse', serialize.parse({ name: 's', text: 'select $1', types: [23, 4294967295] }), { type: 'Parse', name: 's', sql: 'select $1', paramTypes: [23, 4294967295] }],
    ['Describe S', serialize.describe({ type: 'S', name: 's' }), { type: 'Describe', kind: 'S', name: 's' }],
    ['Describe P', serialize.describe({ type: 'P' }), { type: 'Describe', kind: 'P', name: '' }],
    ['Execute', serialize.execute({ portal: 'p', rows: 10 }), { type: 'Execute', portal: 'p', maxRows: 10 }],
    ['Close', serialize.close({ type: 'S', name: 's' }), { type: 'Close', kind: 'S', name: 's' }],
    ['Sync', serialize.sync(), { type: 'Sync' }],
    ['Flush', serialize.flush(), { type: 'Flush' }],
    ['Terminate', serialize.end(), { type: 'Terminate' }],
    ['CopyData', serialize.copyData(Buffer.from('a\tb\n')), { type: 'CopyData', data: Buffer.from('a\tb\n') }],
    ['CopyDone', serialize.copyDone(), { type: 'CopyDone' }],
    ['CopyFail', serialize.copyFail('nope'), { type: 'CopyFail', message: 'nope' }],
  ];
  for (const [name, bytes, msg] of cases) {
    it(`decodes ${name}`, () => {
      expect(fe.decodeFrontend(oneFrame(bytes))).toEqual(msg);
    });
  }

  it('decodes Bind with text, binary and NULL parameters', () => {
    const bytes = serialize.bind({ portal: 'p', statement: 's', values: ['42', null, Buffer.from([1, 2])] });
    expect(fe.decodeFrontend(oneFrame(bytes))).toEqual({
      type: 'Bind', portal: 'p', statement: 's', paramFormats: [0, 0, 1], params: [Buffer.from('42'), null, Buffer.from([1, 2])], resultFormats: [0],
    });
  });

  it('decodes FunctionCall from hand-written bytes', () => {
    // oid 1598, 1 arg format (binary), 2 args (int4 7, NULL), result format text
    const bytes = hex('46 0000001c 0000063e 0001 0001 0002 00000004 00000007 ffffffff 0000');
    expect(fe.decodeFrontend(oneFrame(bytes))).toEqual({
      type: 'FunctionCall', oid: 1598, argFormats: [1], args: [hex('00000007'), null], resultFormat: 0,
    });
    expect(fe.encodeFunctionCall({ oid: 1598, argFormats: [1], args: [hex('00000007'), null], resultFormat: 0 }).equals(bytes)).toBe(true);
  });

  it('decodes the p family by auth state', () => {
    expect(fe.decodeFrontend(oneFrame(serialize.password('s3cret')), 'password')).toEqual({ type: 'PasswordMessage', password: 's3cret' });
    expect(fe.decodeFrontend(oneFrame(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=,r=abc')), 'sasl-initial')).toEqual({
      type: 'SASLInitialResponse', mechanism: 'SCRAM-SHA-256', data: Buffer.from('n,,n=,r=abc'),
    });
    expect(fe.decodeFrontend(oneFrame(hex('70 00000016 534352414d2d5348412d32353600 ffffffff')), 'sasl-initial')).toEqual({
      type: 'SASLInitialResponse', mechanism: 'SCRAM-SHA-256', data: null,
    });
    expect(fe.decodeFrontend(oneFrame(serialize.sendSCRAMClientFinalMessage('c=biws,r=x,p=y')), 'sasl')).toEqual({
      type: 'SASLResponse', data: Buffer.from('c=biws,r=x,p=y'),
    });
    fatalProtocol(() => fe.decodeFrontend(oneFrame(serialize.password('x'))));
  });

  it('encodes the same bytes as pg-protocol', () => {
    const same = (a: Buffer, b: Buffer): void => expect(a.toString('hex')).toBe(b.toString('hex'));
    same(fe.encodeQuery('select ü'), serialize.query('select ü'));
    same(fe.encodeParse('s', 'select $1', [23]), serialize.parse({ name: 's', text: 'select $1', types: [23] }));
    same(fe.encodeBind({ portal: '', statement: 's', paramFormats: [0, 0], params: [Buffer.from('1'), null], resultFormats: [0] }), serialize.bind({ statement: 's', values: ['1', null] }));
    same(fe.encodeDescribe('P', ''), serialize.describe({ type: 'P' }));
    same(fe.encodeExecute('', 0), serialize.execute());
    same(fe.encodeClose('S', 'x'), serialize.close({ type: 'S', name: 'x' }));
    same(fe.encodeSync(), serialize.sync());
    same(fe.encodeFlush(), serialize.flush());
    same(fe.encodeTerminate(), serialize.end());
    same(fe.encodeCopyData(Buffer.from('row')), serialize.copyData(Buffer.from('row')));
    same(fe.encodeCopyDone(), serialize.copyDone());
    same(fe.encodeCopyFail('bad'), serialize.copyFail('bad'));
    same(fe.encodePasswordMessage('pw'), serialize.password('pw'));
    same(fe.encodeSASLInitialResponse('SCRAM-SHA-256', Buffer.from('n,,n=,r=1')), serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=,r=1'));
    same(fe.encodeSASLResponse(Buffer.from('c=biws')), serialize.sendSCRAMClientFinalMessage('c=biws'));
  });

  it('refuses truncated, padded and unknown messages with one named fatal error', () => {
    const bad: [string, Buffer][] = [
      ['Query without NUL', hex('51 00000007 616263')],
      ['Query with trailing bytes', hex('51 00000007 610000')],
      ['Parse cut in the type list', hex('50 0000000d 7300 7100 0002 000000')],
      ['Parse negative count', hex('50 0000000a 7300 7100 ffff')],
      ['Bind param longer than message', hex('42 00000011 00 00 0000 0001 00000010 61 0000')],
      ['Bind negative param count', hex('42 0000000c 00 00 0000 fffe 0000')],
      ['Describe unknown kind', hex('44 00000006 5800')],
      ['Execute cut', hex('45 00000007 0000 00')],
      ['Sync with a body', hex('53 00000005 00')],
      ['unknown type', hex('7a 00000004')],
    ];
    for (const [, bytes] of bad) fatalProtocol(() => fe.decodeFrontend(oneFrame(bytes)));
  });
});

describe('backend encoders, read back by pg-protocol and by our decoders', () => {
  it('Authentication requests', () => {
    expect(be.encodeAuthenticationOk().toString('hex')).toBe('520000000800000000');
    expect(be.encodeAuthenticationCleartextPassword().toString('hex')).toBe('520000000800000003');
    expect(pgParse(be.encodeAuthenticationMD5Password(hex('01020304')))[0]).toMatchObject({ name: 'authenticationMD5Password', salt: hex('01020304') });
    expect(pgParse(be.encodeAuthenticationSASL(['SCRAM-SHA-256']))[0]).toMatchObject({ name: 'authenticationSASL', mechanisms: ['SCRAM-SHA-256'] });
    expect(pgParse(be.encodeAuthenticationSASLContinue(Buffer.from('r=1,s=2,i=3')))[0]).toMatchObject({ name: 'authenticationSASLContinue', data: 'r=1,s=2,i=3' });
    expect(pgParse(be.encodeAuthenticationSASLFinal(Buffer.from('v=xyz')))[0]).toMatchObject({ name: 'authenticationSASLFinal', data: 'v=xyz' });
    const round = (b: Buffer): be.BackendMessage => be.decodeBackend(oneFrame(b));
    expect(round(be.encodeAuthenticationOk())).toEqual({ type: 'AuthenticationOk' });
    expect(round(be.encodeAuthenticationCleartextPassword())).toEqual({ type: 'AuthenticationCleartextPassword' });
    expect(round(be.encodeAuthenticationMD5Password(hex('01020304')))).toEqual({ type: 'AuthenticationMD5Password', salt: hex('01020304') });
    expect(round(be.encodeAuthenticationSASL(['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS']))).toEqual({ type: 'AuthenticationSASL', mechanisms: ['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS'] });
    expect(round(be.encodeAuthenticationSASLContinue(Buffer.from('abc')))).toEqual({ type: 'AuthenticationSASLContinue', data: Buffer.from('abc') });
    expect(round(be.encodeAuthenticationSASLFinal(Buffer.from('v=1')))).toEqual({ type: 'AuthenticationSASLFinal', data: Buffer.from('v=1') });
  });

  it('session status messages', () => {
    expect(be.encodeParameterStatus('TimeZone', 'UTC').toString('hex')).toBe('530000001154696d655a6f6e6500555443' + '00');
    expect(pgParse(be.encodeBackendKeyData(77, -5))[0]).toMatchObject({ name: 'backendKeyData', processID: 77, secretKey: -5 });
    expect(be.encodeReadyForQuery('T').toString('hex')).toBe('5a0000000554');
    expect(pgParse(be.encodeNotificationResponse(9, 'chan', 'hi'))[0]).toMatchObject({ name: 'notification', processId: 9, channel: 'chan', payload: 'hi' });
    const round = (b: Buffer): be.BackendMessage => be.decodeBackend(oneFrame(b));
    expect(round(be.encodeParameterStatus('a', 'b'))).toEqual({ type: 'ParameterStatus', name: 'a', value: 'b' });
    expect(round(be.encodeBackendKeyData(77, -5))).toEqual({ type: 'BackendKeyData', pid: 77, secret: -5 });
    for (const s of ['I', 'T', 'E'] as const) expect(round(be.encodeReadyForQuery(s))).toEqual({ type: 'ReadyForQuery', status: s });
    expect(round(be.encodeNotificationResponse(9, 'chan', 'hi'))).toEqual({ type: 'NotificationResponse', pid: 9, channel: 'chan', payload: 'hi' });
    expect(be.encodeNegotiateProtocolVersion(0x30000, ['_pq_.x']).toString('hex')).toBe('76000000130003000000000001' + '5f70715f2e7800');
    expect(round(be.encodeNegotiateProtocolVersion(0x30000, ['_pq_.x']))).toEqual({ type: 'NegotiateProtocolVersion', newestVersion: 0x30000, unrecognised: ['_pq_.x'] });
    fatalProtocol(() => be.decodeBackend(oneFrame(hex('5a 00000005 58'))));
  });

  it('ErrorResponse and NoticeResponse with all fields', () => {
    const fields: be.ErrorFields = {
      severity: 'ERROR', code: '42P01', message: 'relation "x" does not exist', detail: 'd', hint: 'h', position: '15',
      where: 'w', schema: 'public', table: 'x', column: 'c', dataType: 't', constraint: 'k', file: 'parse.c', line: '1', routine: 'r',
      internalPosition: '2', internalQuery: 'q',
    };
    const e = pgParse(be.encodeErrorResponse(fields))[0];
    expect(e).toMatchObject({ severity: 'ERROR', code: '42P01', detail: 'd', hint: 'h', position: '15', schema: 'public', table: 'x', routine: 'r' });
    expect((e as { message?: string }).message).toBe('relation "x" does not exist');
    expect(be.decodeBackend(oneFrame(be.encodeErrorResponse(fields)))).toEqual({ type: 'ErrorResponse', fields: { ...fields, severityNonLocalized: 'ERROR' } });
    expect(be.decodeBackend(oneFrame(be.encodeNoticeResponse({ severity: 'NOTICE', code: '00000', message: 'm' })))).toEqual({
      type: 'NoticeResponse', fields: { severity: 'NOTICE', severityNonLocalized: 'NOTICE', code: '00000', message: 'm' },
    });
    // Hand-written: S, V, C, M and an unknown field 'Z' that must be ignored.
    const minimal = hex('45 00000023 534552524f5200 564552524f5200 433432363031 00 4d6f6f707300 5a7a00 00');
    expect(be.decodeBackend(oneFrame(minimal))).toEqual({ type: 'ErrorResponse', fields: { severity: 'ERROR', severityNonLocalized: 'ERROR', code: '42601', message: 'oops' } });
    fatalProtocol(() => be.decodeBackend(oneFrame(hex('45 00000008 4d6d00 00'))));
  });

  it('result messages', () => {
    const fields: be.FieldDescription[] = [
      { name: 'id', tableOid: 16384, columnAttr: 1, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 },
      { name: 'blob', tableOid: 4294967295, columnAttr: 2, typeOid: 17, typeSize: -1, typeModifier: -1, format: 1 },
    ];
    const rd = pgParse(be.encodeRowDescription(fields))[0] as { fields: Record<string, unknown>[] };
    expect(rd.fields[0]).toMatchObject({ name: 'id', tableID: 16384, columnID: 1, dataTypeID: 23, dataTypeSize: 4, dataTypeModifier: -1, format: 'text' });
    expect(be.decodeBackend(oneFrame(be.encodeRowDescription(fields)))).toEqual({ type: 'RowDescription', fields });
    const row = be.encodeDataRow(['1', null, Buffer.from([0xde, 0xad]), 'ü']);
    expect(row.toString('hex')).toBe('440000001b0004' + '0000000131' + 'ffffffff' + '00000002dead' + '00000002c3bc');
    const dr = be.decodeBackend(oneFrame(row));
    expect(dr).toEqual({ type: 'DataRow', cells: [Buffer.from('1'), null, hex('dead'), Buffer.from('ü')] });
    expect(be.encodeCommandComplete('INSERT 0 1').toString('hex')).toBe('430000000f' + Buffer.from('INSERT 0 1\0').toString('hex'));
    expect(be.decodeBackend(oneFrame(be.encodeCommandComplete('SELECT 3')))).toEqual({ type: 'CommandComplete', tag: 'SELECT 3' });
    const simple: [Buffer, string, be.BackendMessage['type']][] = [
      [be.encodeEmptyQueryResponse(), '4900000004', 'EmptyQueryResponse'],
      [be.encodeParseComplete(), '3100000004', 'ParseComplete'],
      [be.encodeBindComplete(), '3200000004', 'BindComplete'],
      [be.encodeCloseComplete(), '3300000004', 'CloseComplete'],
      [be.encodeNoData(), '6e00000004', 'NoData'],
      [be.encodePortalSuspended(), '7300000004', 'PortalSuspended'],
    ];
    for (const [b, h, type] of simple) {
      expect(b.toString('hex')).toBe(h);
      expect(be.decodeBackend(oneFrame(b))).toEqual({ type });
    }
    expect(pgParse(be.encodeParameterDescription([23, 25]))[0]).toMatchObject({ name: 'parameterDescription', dataTypeIDs: [23, 25] });
    expect(be.decodeBackend(oneFrame(be.encodeParameterDescription([23, 4294967295])))).toEqual({ type: 'ParameterDescription', paramTypes: [23, 4294967295] });
  });

  it('DataRow cells are views of the frame', () => {
    const f = oneFrame(hex('44 00000010 0002 00000001 61 00000001 62'));
    const m = be.decodeBackend(f);
    if (m.type !== 'DataRow') throw new Error('not a DataRow');
    for (const c of m.cells) expect(c?.buffer).toBe(f.raw.buffer);
    fatalProtocol(() => be.decodeBackend(oneFrame(hex('44 0000000b 0002 00000001 61'))));
    fatalProtocol(() => be.decodeBackend(oneFrame(hex('44 0000000b 0001 00000002 61'))));
  });

  it('COPY messages', () => {
    expect(be.encodeCopyInResponse(0, [0, 0]).toString('hex')).toBe('470000000b000002' + '00000000');
    expect(pgParse(be.encodeCopyOutResponse(1, [1]))[0]).toMatchObject({ name: 'copyOutResponse', binary: true, columnTypes: [1] });
    for (const t of ['CopyInResponse', 'CopyOutResponse', 'CopyBothResponse'] as const) {
      expect(be.decodeBackend(oneFrame(be.encodeCopyResponse(t, 0, [0, 0, 0])))).toEqual({ type: t, format: 0, columnFormats: [0, 0, 0] });
    }
    expect(be.decodeBackend(oneFrame(be.encodeCopyData(Buffer.from('x'))))).toEqual({ type: 'CopyData', data: Buffer.from('x') });
    expect(be.decodeBackend(oneFrame(be.encodeCopyDone()))).toEqual({ type: 'CopyDone' });
    expect(be.decodeBackend(oneFrame(be.encodeFunctionCallResponse(null)))).toEqual({ type: 'FunctionCallResponse', result: null });
    expect(be.encodeFunctionCallResponse(hex('0102')).toString('hex')).toBe('560000000a000000020102');
  });

  it('refuses unknown backend types and unsupported auth methods', () => {
    fatalProtocol(() => be.decodeBackend(oneFrame(hex('7a 00000004'))));
    let caught: unknown;
    try {
      be.decodeBackend(oneFrame(hex('52 00000008 00000007')));
    } catch (e) {
      caught = e;
    }
    expect((caught as AirlockError).code).toBe('AIRLOCK_UNSUPPORTED');
  });
});

describe('Writer', () => {
  it('backfills the length of typed and untyped messages, growing past its size hint', () => {
    const long = 'x'.repeat(1000);
    const typed = new Writer(0x51, 8).cstring(long).finish();
    expect(typed.readInt32BE(1)).toBe(1005);
    expect(typed.equals(serialize.query(long))).toBe(true);
    expect(new Writer(0, 8).int32(80877103).finish().toString('hex')).toBe('0000000804d2162f');
  });

  it('refuses a NUL inside a string rather than split a field', () => {
    fatalProtocol(() => fe.encodeStartupMessage({ application_name: 'x\0user\0postgres' }));
  });
});
