// A throwaway certificate authority and a server certificate for 127.0.0.1 and localhost, made
// with the openssl CLI, so HTTPS tests exercise a real chain that is not in the system roots.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface TestCertificates {
  caPem: string;
  certPem: string;
  keyPem: string;
}

function openssl(args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`openssl ${args[0]} failed: ${stderr.trim() || err.message}`));
      else resolve();
    });
  });
}

/** Writes the CA and server key pair into `dir` (which must exist) and returns them as PEM. */
export async function makeTestCertificates(dir: string, commonName = 'tide test CA'): Promise<TestCertificates> {
  // EC keys: generating them takes milliseconds, RSA keys can take a second.
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(
    [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '7',
      '-subj',
      `/CN=${commonName}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  await openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'], dir);
  fs.writeFileSync(
    path.join(dir, 'server.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n',
  );
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '7',
      '-extfile',
      'server.ext',
      '-out',
      'server.crt',
    ],
    dir,
  );
  const read = (name: string) => fs.readFileSync(path.join(dir, name), 'utf8');
  return { caPem: read('ca.crt'), certPem: read('server.crt'), keyPem: read('server.key') };
}
