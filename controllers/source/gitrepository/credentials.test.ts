import type { V1Secret } from '@kubernetes/client-node';
import { expect } from 'chai';
import { SecretError, credentialsFrom, pgpKeysFrom } from './credentials.ts';

const secret = (data: Record<string, string>): V1Secret => ({
  metadata: { name: 'creds', namespace: 'ns' },
  data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
});
const KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n';
const CA = '-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n';

describe('GitRepository credentials', () => {
  it('reads basic auth, bearer tokens and a CA for HTTPS', () => {
    expect(credentialsFrom(secret({ username: 'u', password: 'p', 'ca.crt': CA }), 'https://h/r')).to.deep.equal({
      username: 'u',
      password: 'p',
      caPem: CA,
    });
    expect(credentialsFrom(secret({ bearerToken: 't' }), 'https://h/r')).to.deep.equal({ bearerToken: 't' });
    expect(credentialsFrom(secret({ caFile: CA }), 'https://h/r')).to.deep.equal({ caPem: CA });
  });

  it('reads identity, passphrase and known_hosts for SSH', () => {
    expect(
      credentialsFrom(secret({ identity: KEY, known_hosts: 'h ssh-ed25519 AAAA', password: 'pp' }), 'ssh://git@h/r'),
    ).to.deep.equal({
      identity: KEY,
      knownHosts: 'h ssh-ed25519 AAAA',
      identityPassphrase: 'pp',
    });
  });

  it('names what is malformed, never the values', () => {
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ username: 'u' }, 'https://h/r', /needs both username and password, found only username/],
      [{ password: 'hunter2' }, 'https://h/r', /found only password/],
      [
        { username: 'u', password: 'hunter2', bearerToken: 't' },
        'https://h/r',
        /either username\/password or bearerToken/,
      ],
      [{ identity: KEY }, 'ssh://git@h/r', /missing known_hosts/],
      [{ identity: 'hunter2', known_hosts: 'x' }, 'ssh://git@h/r', /'identity' is not a PEM or OpenSSH private key/],
      [{ 'ca.crt': 'hunter2' }, 'https://h/r', /'ca.crt' is not a PEM certificate/],
    ];
    for (const [data, url, message] of cases) {
      let error: unknown;
      try {
        credentialsFrom(secret(data), url);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(Object.keys(data))).to.be.instanceOf(SecretError);
      expect((error as Error).message)
        .to.match(message)
        .and.to.include("secret 'ns/creds'");
      expect((error as Error).message).to.not.include('hunter2');
    }
  });

  it('collects PGP keys from .asc entries', () => {
    expect(pgpKeysFrom(secret({ 'a.asc': 'KEY-A', 'b.asc': 'KEY-B', other: 'x' }))).to.deep.equal(['KEY-A', 'KEY-B']);
    expect(() => pgpKeysFrom(secret({ other: 'x' }))).to.throw(SecretError, /no PGP public keys/);
  });
});
