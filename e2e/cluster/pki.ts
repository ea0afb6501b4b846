// Certificates and keys for the local control plane, made with the openssl CLI (Node can create
// keys but not X.509 certificates). EC P-256 keys keep generation to a few milliseconds.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface KeyPair {
  cert: string;
  key: string;
}

export interface Pki {
  ca: KeyPair;
  apiserver: KeyPair;
  admin: KeyPair;
  controllerManager: KeyPair;
  scheduler: KeyPair;
  /** Signs service-account tokens (kube-controller-manager, kube-apiserver) and verifies them. */
  serviceAccountKey: string;
  serviceAccountPub: string;
}

const days = '3650';

export function generatePki(dir: string, serviceIP: string): Pki {
  fs.mkdirSync(dir, { recursive: true });
  // An empty config, so the machine's openssl.cnf adds no extensions of its own.
  const cnf = path.join(dir, 'openssl.cnf');
  fs.writeFileSync(cnf, '[req]\ndistinguished_name = dn\n[dn]\n');
  const openssl = (args: string[]) => {
    try {
      execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
      throw new Error(
        `openssl ${args[0]} failed in ${dir}: ${stderr || (err as Error).message}; is the openssl 3 CLI installed?`,
      );
    }
  };
  const files = (name: string): KeyPair => ({
    cert: path.join(dir, `${name}.crt`),
    key: path.join(dir, `${name}.key`),
  });
  const newCert = (name: string, subject: string, ext: string[], signer?: KeyPair): KeyPair => {
    const out = files(name);
    openssl([
      'req',
      '-x509',
      '-new',
      '-config',
      cnf,
      '-days',
      days,
      '-subj',
      subject,
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-noenc',
      '-keyout',
      out.key,
      '-out',
      out.cert,
      ...(signer ? ['-CA', signer.cert, '-CAkey', signer.key] : []),
      ...ext.flatMap((e) => ['-addext', e]),
    ]);
    return out;
  };
  const leaf = (usage: string) => [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    `extendedKeyUsage=${usage}`,
  ];

  const ca = newCert('ca', '/CN=tide-local-ca', [
    'basicConstraints=critical,CA:TRUE',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const sans = [
    'IP:127.0.0.1',
    `IP:${serviceIP}`,
    'DNS:localhost',
    'DNS:kubernetes',
    'DNS:kubernetes.default',
    'DNS:kubernetes.default.svc',
    'DNS:kubernetes.default.svc.cluster.local',
  ];
  const apiserver = newCert(
    'apiserver',
    '/CN=kube-apiserver',
    [...leaf('serverAuth'), `subjectAltName=${sans.join(',')}`],
    ca,
  );
  const admin = newCert('admin', '/O=system:masters/CN=tide-admin', leaf('clientAuth'), ca);
  const controllerManager = newCert(
    'kube-controller-manager',
    '/CN=system:kube-controller-manager',
    leaf('clientAuth'),
    ca,
  );
  const scheduler = newCert('kube-scheduler', '/CN=system:kube-scheduler', leaf('clientAuth'), ca);

  const serviceAccountKey = path.join(dir, 'sa.key');
  const serviceAccountPub = path.join(dir, 'sa.pub');
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', serviceAccountKey]);
  openssl(['pkey', '-in', serviceAccountKey, '-pubout', '-out', serviceAccountPub]);
  return { ca, apiserver, admin, controllerManager, scheduler, serviceAccountKey, serviceAccountPub };
}
