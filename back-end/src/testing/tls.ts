/** A certificate authority of the test's own and a server certificate it signed, made with openssl. */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const openssl = (args: string[]) => promisify(execFile)('openssl', args, { timeout: 60_000 });

export interface TestCa {
  /** The CA certificate's file, as an operator would mount it. */
  caFile: string;
  /** The server's certificate and key (PEM), signed by the CA for `hostNames`. */
  cert: string;
  key: string;
}

/** Writes a new CA to `dir` and signs a server certificate for `hostNames` (DNS names) with it. */
export async function makeTestCa(dir: string, hostNames: string[]): Promise<TestCa> {
  const file = (name: string) => join(dir, name);
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-sha256'];
  await openssl([
    'req',
    '-x509',
    ...key,
    '-days',
    '2',
    '-subj',
    '/CN=Test CA',
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.crt'),
  ]);
  await openssl([
    'req',
    ...key,
    '-subj',
    `/CN=${hostNames[0]}`,
    '-keyout',
    file('server.key'),
    '-out',
    file('server.csr'),
  ]);
  await writeFile(file('server.ext'), `subjectAltName=${hostNames.map((name) => `DNS:${name}`).join(',')}\n`);
  await openssl([
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    file('ca.crt'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-sha256',
    '-extfile',
    file('server.ext'),
    '-out',
    file('server.crt'),
  ]);
  return {
    caFile: file('ca.crt'),
    cert: await readFile(file('server.crt'), 'utf8'),
    key: await readFile(file('server.key'), 'utf8'),
  };
}
