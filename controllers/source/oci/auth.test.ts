// Docker config Secrets and username/password Secrets, and the entry chosen for a registry.
import type { V1Secret } from '@kubernetes/client-node';
import { expect } from 'chai';
import { SecretError } from '../gitrepository/credentials.ts';
import { dockerConfigCredentials, parseDockerConfig, registryCredentialsFrom, registryTlsFrom } from './auth.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');

function secret(data: Record<string, string>, type = 'Opaque'): V1Secret {
  return {
    metadata: { name: 'creds', namespace: 'ns' },
    type,
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
  };
}

function dockerconfig(auths: Record<string, unknown>): string {
  return JSON.stringify({ auths });
}

describe('docker config credentials', () => {
  it('decodes auth as user:password (the password may hold colons)', () => {
    const text = dockerconfig({ 'ghcr.io': { auth: b64('bot:pa:ss') } });
    expect(dockerConfigCredentials(text, 'ghcr.io', 'test')).to.deep.equal({ username: 'bot', password: 'pa:ss' });
  });

  it('takes username and password fields, identitytoken and registrytoken', () => {
    const text = dockerconfig({
      'a.io': { username: 'u', password: 'p' },
      'b.io': { username: 'u', identitytoken: 'refresh' },
      'c.io': { registrytoken: 'bearer' },
      'd.io': {},
    });
    expect(dockerConfigCredentials(text, 'a.io', 't')).to.deep.equal({ username: 'u', password: 'p' });
    expect(dockerConfigCredentials(text, 'b.io', 't')).to.deep.equal({ identityToken: 'refresh', username: 'u' });
    expect(dockerConfigCredentials(text, 'c.io', 't')).to.deep.equal({ registryToken: 'bearer' });
    expect(dockerConfigCredentials(text, 'd.io', 't')).to.equal(undefined);
  });

  it('matches keys as docker does: exact first, then by host without scheme or path', () => {
    const text = dockerconfig({
      'https://127.0.0.1:5000/v2/': { auth: b64('by-url:x') },
      '127.0.0.1:5000': { auth: b64('exact:x') },
      'http://localhost:5001': { auth: b64('scheme:x') },
      'https://index.docker.io/v1/': { auth: b64('hub:x') },
      'registry.io': { auth: b64('no-port:x') },
    });
    const user = (registry: string) => {
      const creds = dockerConfigCredentials(text, registry, 't');
      return creds && 'username' in creds ? creds.username : creds;
    };
    expect(user('127.0.0.1:5000')).to.equal('exact');
    expect(user('localhost:5001')).to.equal('scheme');
    expect(user('index.docker.io')).to.equal('hub');
    expect(user('docker.io')).to.equal('hub');
    expect(user('registry.io:443')).to.equal(undefined);
    expect(user('other.io')).to.equal(undefined);
    expect(user('127.0.0.1')).to.equal(undefined);
  });

  it('reads the legacy .dockercfg map', () => {
    expect(parseDockerConfig(JSON.stringify({ 'x.io': { auth: b64('u:p') } }), 't').get('x.io')).to.deep.equal({
      username: 'u',
      password: 'p',
    });
  });

  it('names the entry of a malformed config, never its values', () => {
    const cases: [string, RegExp][] = [
      ['{', /invalid src: not JSON/],
      ['[]', /expected a JSON object/],
      [JSON.stringify({ auths: [] }), /'auths' must be an object/],
      [dockerconfig({ 'x.io': 'secretvalue' }), /the entry for 'x.io' must be an object/],
      [
        dockerconfig({ 'x.io': { auth: b64('secretvalue') } }),
        /entry 'x.io': 'auth' must be base64 of 'username:password'/,
      ],
      [dockerconfig({ 'x.io': { auth: '!!secretvalue' } }), /'auth' must be base64/],
      [dockerconfig({ 'x.io': { username: 'u' } }), /needs both username and password/],
      [dockerconfig({ 'x.io': { password: 42 } }), /'password' must be a string/],
    ];
    for (const [text, message] of cases) {
      expect(() => dockerConfigCredentials(text, 'x.io', 'src')).to.throw(SecretError, message);
      try {
        dockerConfigCredentials(text, 'x.io', 'src');
      } catch (err) {
        expect((err as Error).message).not.to.include('secretvalue');
      }
    }
  });
});

describe('registryCredentialsFrom', () => {
  it('reads .dockerconfigjson of a dockerconfigjson Secret', () => {
    const s = secret(
      { '.dockerconfigjson': dockerconfig({ 'ghcr.io': { auth: b64('u:p') } }) },
      'kubernetes.io/dockerconfigjson',
    );
    expect(registryCredentialsFrom(s, 'ghcr.io')).to.deep.equal({ username: 'u', password: 'p' });
    expect(registryCredentialsFrom(s, 'quay.io')).to.equal(undefined);
  });

  it('reads username and password keys (HelmRepository type oci)', () => {
    expect(registryCredentialsFrom(secret({ username: 'u', password: 'p' }), 'any.io')).to.deep.equal({
      username: 'u',
      password: 'p',
    });
    expect(registryCredentialsFrom(secret({ other: 'x' }), 'any.io')).to.equal(undefined);
    expect(() => registryCredentialsFrom(secret({ username: 'u' }), 'any.io')).to.throw(
      SecretError,
      /secret 'ns\/creds': required fields 'username' and 'password', found only username/,
    );
    expect(() => registryCredentialsFrom(secret({}, 'kubernetes.io/dockerconfigjson'), 'x.io')).to.throw(
      SecretError,
      /no .dockerconfigjson key/,
    );
  });

  it('reads TLS material of a certSecretRef', () => {
    const pem = (kind: string) => `-----BEGIN ${kind}-----\nAAAA\n-----END ${kind}-----\n`;
    expect(registryTlsFrom(secret({ 'ca.crt': pem('CERTIFICATE') }))).to.deep.equal({ ca: pem('CERTIFICATE') });
    expect(registryTlsFrom(secret({ 'tls.crt': pem('CERTIFICATE'), 'tls.key': pem('EC PRIVATE KEY') }))).to.deep.equal({
      cert: pem('CERTIFICATE'),
      key: pem('EC PRIVATE KEY'),
    });
    expect(() => registryTlsFrom(secret({ 'tls.crt': pem('CERTIFICATE') }))).to.throw(
      SecretError,
      /found only tls.crt/,
    );
    expect(() => registryTlsFrom(secret({ 'ca.crt': 'nope' }))).to.throw(SecretError, /not a PEM certificate/);
  });
});
