/**
 * The SSH connection's config schema: its section of the config file, composed with the
 * core's keys by app/config.ts (issue 22). Shared fields (duration, listen, tls …) come from the core.
 */
import { z } from 'zod';
import { duration, glob, listen } from '../../src/config/index.js';

// ---- SSH (protocols/ssh) ----

const sshUpstream = z
  .strictObject({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(22),
    /** An OpenSSH known_hosts file listing the target's host key. */
    known_hosts: z.string().optional(),
    /** A pinned host key fingerprint, "SHA256:…" as ssh-keygen -l prints it. */
    host_key_fingerprint: z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, 'expected SHA256:<base64> as ssh-keygen -l prints it').optional(),
  })
  .refine((u) => u.known_hosts !== undefined || u.host_key_fingerprint !== undefined, {
    message: 'set known_hosts or host_key_fingerprint: airlock does not trust a target host key on first use',
  });

const sshCertificateCredentials = z.strictObject({
  type: z.literal('ssh-certificate'),
  /** The CA private key (OpenSSH format, Ed25519), usually a secret reference. */
  ca_key: z.string().min(1),
  ttl: duration.default(300_000),
});

const sshStaticCredentials = z.strictObject({
  type: z.literal('static'),
  /** A private key (OpenSSH or PEM), usually a secret reference. */
  private_key: z.string().min(1).optional(),
  password: z.string().optional(),
  passphrase: z.string().optional(),
});

export const sshConnection = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . -'),
  protocol: z.literal('ssh'),
  listen,
  /** The host key airlock presents (OpenSSH private key or a secret reference); default: generated once into state_dir. */
  host_key: z.string().optional(),
  upstream: sshUpstream,
  credentials: z.discriminatedUnion('type', [sshCertificateCredentials, sshStaticCredentials]),
  allow_groups: z.array(z.string()).default([]),
  /** group -> the logins its members may use on the target ('*' group: every verified caller). */
  allowed_logins: z.record(z.string(), z.array(z.string().min(1))).default({}),
  /** Environment variables a client may set (globs). */
  env_allow: z.array(glob).default(['LANG', 'LC_*', 'TERM']),
  record: z
    .strictObject({ output_bytes: z.number().int().min(0).default(1024 * 1024) })
    .default({ output_bytes: 1024 * 1024 }),
  /**
   * Interactive sessions of people (`kind: human`) only: masked output held back this long
   * with nothing new is let through (so a prompt shows), at the cost that a secret printed
   * in parts slower than this can escape the detectors. `0` never flushes. Agents,
   * machines and plain exec never flush; recordings never do.
   */
  output_flush_idle: duration.default(40),
  drain_timeout: duration.optional(),
  /** From connect to a verified token; a connection that takes longer is closed. */
  auth_timeout: duration.default(30_000),
});

export type SshConnectionConfig = z.output<typeof sshConnection>;

declare module '../../src/config/index.js' {
  interface ConnectionConfigs {
    ssh: SshConnectionConfig;
  }
}
