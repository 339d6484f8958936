import { describe, expect, it } from 'vitest';
import { DETECTORS, type DetectorName, detect, isDetectorName, maskText } from '../../src/masking/index.js';
import { ibanChecksumValid, luhnValid } from '../../src/masking/validators.js';

function found(text: string, name: DetectorName): string[] {
  return detect(text, [name]).map((f) => text.slice(f.start, f.end));
}

// Built at run time so that no scanner flags this file as holding live secrets.
const join = (...parts: string[]): string => parts.join('');
const B64_40 = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

const POSITIVE: Record<DetectorName, Array<[text: string, secret: string]>> = {
  email: [
    ['contact alice.smith+tag@example.co.uk today', 'alice.smith+tag@example.co.uk'],
    ['<bob@mail.example.com>', 'bob@mail.example.com'],
  ],
  credit_card: [
    ['card 4111 1111 1111 1111 ok', '4111 1111 1111 1111'],
    ['card 4111-1111-1111-1111 12 items', '4111-1111-1111-1111'],
    ['amex 378282246310005.', '378282246310005'],
    ['mc 5555555555554444', '5555555555554444'],
  ],
  us_ssn: [
    ['ssn: 123-45-6789', '123-45-6789'],
    ['ssn 078 05 1120 on file', '078 05 1120'],
  ],
  phone: [
    ['call +44 20 7946 0958 now', '+44 20 7946 0958'],
    ['E.164 +14155552671', '+14155552671'],
    ['us (555) 234-5678', '(555) 234-5678'],
    ['us 555-234-5678', '555-234-5678'],
    ['uk 020 7946 0958', '020 7946 0958'],
    ['fr 01 23 45 67 89', '01 23 45 67 89'],
  ],
  iban: [
    ['iban DE89 3704 0044 0532 0130 00 AND more', 'DE89 3704 0044 0532 0130 00'],
    ['GB82WEST12345698765432', 'GB82WEST12345698765432'],
    ['FR1420041010050500013M02606', 'FR1420041010050500013M02606'],
  ],
  ipv4: [
    ['from 192.168.1.20:5432', '192.168.1.20'],
    ['host 10.0.0.1.', '10.0.0.1'],
  ],
  ipv6: [
    ['addr 2001:db8::8a2e:370:7334 up', '2001:db8::8a2e:370:7334'],
    ['full 2001:0db8:85a3:0000:0000:8a2e:0370:7334', '2001:0db8:85a3:0000:0000:8a2e:0370:7334'],
    ['mapped ::ffff:192.0.2.128', '::ffff:192.0.2.128'],
  ],
  jwt: [
    [
      'Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
      'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
    ],
  ],
  aws_access_key: [['key AKIAIOSFODNN7EXAMPLE set', 'AKIAIOSFODNN7EXAMPLE'], ['ASIAY34FZKBOKMUTVV7A', 'ASIAY34FZKBOKMUTVV7A']],
  aws_secret_key: [
    [`aws_secret_access_key = ${B64_40}`, B64_40],
    [`"SecretAccessKey": "${B64_40}"`, B64_40],
    ['standalone Zk9mQ2pL7vR4tY8wZ3nB6cF1hJ5sD0aGx+Yq/Lm2 here', 'Zk9mQ2pL7vR4tY8wZ3nB6cF1hJ5sD0aGx+Yq/Lm2'],
  ],
  gcp_key: [
    [join('key=AIza', 'SyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe'), join('AIza', 'SyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe')],
    [join('token ya29', '.a0AfH6SMBx3kQ9zLw7pR2mN5vT8yU1cE4'), join('ya29', '.a0AfH6SMBx3kQ9zLw7pR2mN5vT8yU1cE4')],
  ],
  azure_key: [
    [
      join('DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=', 'a'.repeat(0), 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='),
      'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==',
    ],
    ['client secret abc8Q~Xk9mQ2pL7vR4tY8wZ3nB6cF1hJ5sD0aG end', 'abc8Q~Xk9mQ2pL7vR4tY8wZ3nB6cF1hJ5sD0aG'],
    ['https://acct.blob.core.windows.net/c/b?sv=2021&sig=Zk9mQ2pL7vR4tY8wZ3nB6cF1hJ5%2BsD0aG', 'Zk9mQ2pL7vR4tY8wZ3nB6cF1hJ5%2BsD0aG'],
  ],
  github_token: [
    [join('GITHUB_TOKEN=gh', 'p_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8'), join('gh', 'p_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8')],
    [join('github', '_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123'), join('github', '_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123')],
  ],
  slack_token: [
    [join('SLACK=xo', 'xb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx'), join('xo', 'xb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx')],
    [
      join('hook https://hooks.slack', '.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX'),
      join('https://hooks.slack', '.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX'),
    ],
  ],
  openai_key: [
    [join('OPENAI_API_KEY=sk', '-proj-abc123DEF456ghi789JKL012mno345'), join('sk', '-proj-abc123DEF456ghi789JKL012mno345')],
    [join('key sk', '-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4'), join('sk', '-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4')],
  ],
  private_key: [
    [
      join('-----BEGIN RSA ', 'PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1234abcd\nQ2pL7vR4tY8w==\n-----END RSA ', 'PRIVATE KEY-----\nafter'),
      join('-----BEGIN RSA ', 'PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1234abcd\nQ2pL7vR4tY8w==\n-----END RSA ', 'PRIVATE KEY-----'),
    ],
    [
      join('{"private_key": "-----BEGIN ', 'PRIVATE KEY-----\\nMIIEvQIBADANBg\\nkqhkiG9w0BAQEF==\\n-----END ', 'PRIVATE KEY-----\\n"}'),
      join('-----BEGIN ', 'PRIVATE KEY-----\\nMIIEvQIBADANBg\\nkqhkiG9w0BAQEF==\\n-----END ', 'PRIVATE KEY-----'),
    ],
    // Truncated: no END line; the base64 body is still masked.
    [join('-----BEGIN OPENSSH ', 'PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nBG5vbmUAAAAEbm9uZQ'), join('-----BEGIN OPENSSH ', 'PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nBG5vbmUAAAAEbm9uZQ')],
  ],
  high_entropy: [
    ['token=Xk9mQ2pL7vR4tY8wZ3nB6cF1hJ5sD0aG;', 'Xk9mQ2pL7vR4tY8wZ3nB6cF1hJ5sD0aG'],
    ['session 8f3k2m9x7q4w1z6v5b0n3c8j2h7g4d1s0a9p done', '8f3k2m9x7q4w1z6v5b0n3c8j2h7g4d1s0a9p'],
    ['blob dGhpcyBpcyBhIHNlY3JldCB2YWx1ZSAxMjM0NQ== end', 'dGhpcyBpcyBhIHNlY3JldCB2YWx1ZSAxMjM0NQ=='],
  ],
};

const ORDINARY = [
  'The quick brown fox jumps over the lazy dog; nothing to see here.',
  'uuid 550e8400-e29b-41d4-a716-446655440000 and 123e4567-e89b-12d3-a456-426614174000',
  'at 2024-01-15T10:30:00.000Z, 2024-01-15 10:30:00+02, 10:30:00, 1705314600, 20240115103000',
  'paths /usr/lib/x86_64-linux-gnu/libc.so.6 ./node_modules/typescript/lib/tsc.js C:\\Program Files\\App',
  'identifiers AbstractSingletonProxyFactoryBean getUserAccountById2024Version compressedTexSubImage3D',
  'constants ERR_INVALID_ARG_TYPE FLOAT_32_UNSIGNED_INT_24_8_REV my-service-deployment-7d9f8b6c5d-x2k4p',
  'commit 3f786850e387550fdab836ed7e6dc881de23001b sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  'version 1.2.3, port 8080, pid 12345, order #100234, total 1234.56, count 1,234,567',
  'std::vector<int> and Foo::Bar::baz() in cafe::beef code',
  'MAC 00:1a:2b:3c:4d:5e, ratio 16:9, time 23:59:59',
  'https://developer.mozilla.org/docs/Web/API/URL/hash is documentation',
  'numbers 1234567890123 (13 digits, not Luhn) and 4111 1111 1111 1112',
  'SELECT id, name FROM users WHERE created_at > now() - interval \'1 day\'',
  'ask-me-anything task-runner disk-usage 2024-01-15',
  'ssn-like 000-12-3456 666-12-3456 912-34-5678 123-00-4567 123-45-0000 and date 2024-01-15',
];

describe('detectors', () => {
  it('knows every detector name', () => {
    expect(new Set(DETECTORS).size).toBe(17);
    for (const d of DETECTORS) expect(isDetectorName(d)).toBe(true);
    expect(isDetectorName('ssn')).toBe(false);
    expect(isDetectorName('__proto__')).toBe(false);
  });

  for (const name of DETECTORS) {
    describe(name, () => {
      for (const [text, secret] of POSITIVE[name]) {
        it(`finds ${JSON.stringify(secret.slice(0, 40))}`, () => {
          expect(found(text, name)).toContain(secret);
          expect(maskText(text, [{ rule: 'r', detect: [name], method: 'redact' }]).text).not.toContain(secret);
        });
      }
      it('has no false positive on ordinary text, UUIDs, timestamps, paths, hashes', () => {
        for (const text of ORDINARY) expect(found(text, name), text).toEqual([]);
      });
    });
  }

  it('rejects invalid checksums', () => {
    expect(found('4111 1111 1111 1112', 'credit_card')).toEqual([]);
    expect(found('0000 0000 0000 0000', 'credit_card')).toEqual([]);
    expect(found('DE89 3704 0044 0532 0130 01', 'iban')).toEqual([]);
    expect(found('999.1.1.1 and 1.2.3.256', 'ipv4')).toEqual([]);
    expect(luhnValid('79927398713')).toBe(true);
    expect(luhnValid('79927398710')).toBe(false);
    expect(ibanChecksumValid('GB82WEST12345698765432')).toBe(true);
    expect(ibanChecksumValid('GB82WEST12345698765433')).toBe(false);
  });

  it('returns non-overlapping findings sorted by start, overlaps merged', () => {
    const text = 'mail a@example.com, card 4111111111111111, ip 10.1.2.3, key AKIAIOSFODNN7EXAMPLE';
    const all = detect(text, DETECTORS);
    expect(all.map((f) => f.detector)).toEqual(['email', 'credit_card', 'ipv4', 'aws_access_key']);
    for (let i = 1; i < all.length; i++) expect(all[i]!.start).toBeGreaterThanOrEqual(all[i - 1]!.end);
    // A JWT is also a high-entropy run: one span, named after the more specific detector.
    const jwt = POSITIVE.jwt[0]![1];
    expect(detect(`x ${jwt} y`, ['high_entropy', 'jwt'])).toEqual([{ detector: 'jwt', start: 2, end: 2 + jwt.length }]);
  });

  it('masks only the value after a key= prefix', () => {
    const text = `aws_secret_access_key=${B64_40}`;
    expect(maskText(text, [{ rule: 'r', detect: ['aws_secret_key'], method: 'redact' }]).text).toBe('aws_secret_access_key=[redacted]');
  });

  it('stays linear on inputs built to make regexes backtrack', () => {
    const hostile = [
      'a'.repeat(200_000),
      '1 '.repeat(100_000),
      '1-'.repeat(100_000),
      'a.'.repeat(100_000) + '@',
      `${'a'.repeat(60)}@`.repeat(3000),
      ':'.repeat(100_000),
      'A1 '.repeat(60_000),
      `-----BEGIN ${'PRIVATE KEY-----'}\n`.repeat(5000),
      'eyJ'.repeat(50_000),
      '+1'.repeat(50_000),
    ];
    // No wall-clock threshold: the test completing at all (within the default timeout) is the check.
    for (const h of hostile) expect(Array.isArray(detect(h, DETECTORS))).toBe(true);
  });
});
