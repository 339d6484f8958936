/** A tiny client for the admin API, used by the approvals / sessions / token commands. */
import { AirlockError } from '../src/util/errors.js';

export interface AdminOptions {
  admin?: string;
  token?: string;
}

export async function adminRequest<T>(opts: AdminOptions, method: string, path: string, body?: unknown): Promise<T> {
  const base = opts.admin ?? process.env.AIRLOCK_ADMIN_URL;
  const token = opts.token ?? process.env.AIRLOCK_TOKEN;
  if (base === undefined) throw new AirlockError('AIRLOCK_CONFIG_INVALID', 'no admin URL: pass --admin URL or set AIRLOCK_ADMIN_URL');
  if (token === undefined) throw new AirlockError('AIRLOCK_AUTH_MISSING', 'no token: pass --token or set AIRLOCK_TOKEN');
  let res: Response;
  try {
    res = await fetch(new URL(path, base), {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch {
    throw new AirlockError('AIRLOCK_UPSTREAM_UNAVAILABLE', `cannot reach the admin API at ${base}`);
  }
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text === '' ? null : (JSON.parse(text) as unknown);
  } catch {
    parsed = null;
  }
  if (!res.ok) {
    const title = typeof parsed === 'object' && parsed !== null && 'title' in parsed ? String((parsed as { title: unknown }).title) : res.statusText;
    throw new AirlockError('AIRLOCK_FORBIDDEN', `${res.status} ${title}`);
  }
  return parsed as T;
}
