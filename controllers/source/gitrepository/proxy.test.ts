import type { V1Secret } from '@kubernetes/client-node';
import { expect } from 'chai';
import { SecretError } from './credentials.ts';
import { proxyFromSecret } from './proxy.ts';

const secret = (data: Record<string, string>): V1Secret => ({
  metadata: { name: 'proxy', namespace: 'ns' },
  data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
});

describe('GitRepository proxySecretRef', () => {
  it('reads address, username and password as Flux documents them', () => {
    const p = proxyFromSecret(secret({ address: 'http://proxy.local:3128', username: 'u', password: 'p' }));
    expect(p.url.toString()).to.equal('http://proxy.local:3128/');
    expect(p).to.include({ username: 'u', password: 'p' });
    const anon = proxyFromSecret(secret({ address: 'https://proxy.local' }));
    expect(anon.url.toString()).to.equal('https://proxy.local/');
    expect(anon.username).to.equal(undefined);
  });

  it('takes credentials from the address when the keys are absent, and keeps them out of the URL', () => {
    const p = proxyFromSecret(secret({ address: 'http://alice:s%40cret@proxy.local:8080' }));
    expect(p).to.include({ username: 'alice', password: 's@cret' });
    expect(p.url.toString()).to.equal('http://proxy.local:8080/');
  });

  it('fails naming the field and the key, never the password', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{}, /key 'address' not found/],
      [{ address: '  ' }, /proxy address is empty/],
      [{ address: 'http://u:hunter2@[bad', password: 'hunter2' }, /'address' is not a valid URL/],
      [{ address: 'socks5://proxy.local:1080' }, /http or https scheme, got 'socks5'/],
      [{ address: 'http://proxy.local', password: 'hunter2' }, /'password' is set but 'username' is not/],
    ];
    for (const [data, why] of cases) {
      let err: unknown;
      try {
        proxyFromSecret(secret(data));
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(data)).to.be.instanceOf(SecretError);
      const { message } = err as Error;
      expect(message).to.match(why).and.contain("spec.proxySecretRef: secret 'ns/proxy'");
      expect(message).not.to.contain('hunter2');
    }
  });
});
