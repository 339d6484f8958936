/** Every protocol airlock speaks: one line each (its folder exports the adapter). */
import { postgresAdapter } from '../protocols/postgres/adapter.js';
import { mysqlAdapter } from '../protocols/mysql/adapter.js';
import { sshAdapter } from '../protocols/ssh/adapter.js';
import { httpAdapter } from '../protocols/http/adapter.js';

export const adapters = [postgresAdapter, mysqlAdapter, sshAdapter, httpAdapter] as const;
