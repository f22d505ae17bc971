import { createHash } from 'node:crypto';

/**
 * The opaque id a replica names itself by in X-Served-By, never its host name: the first 12 hex digits of the
 * host name's SHA-256 (front-end/nginx/40-served-by.sh computes the same; the deploy and tests import this).
 */
export const replicaId = (hostname: string): string => createHash('sha256').update(hostname).digest('hex').slice(0, 12);
