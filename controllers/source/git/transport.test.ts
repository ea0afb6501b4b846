import { expect } from 'chai';
import ssh2 from 'ssh2';
import { openTransport } from './transport.ts';
import { TransportError, type GitCredentials } from './types.ts';

const opts = { timeoutMs: 1000 };
const hostKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEis1hDuYn1ZSd/rVAXnsqjuVFTGs72Ww2LAbZBrwCvz';

function openError(url: string, creds: GitCredentials = {}): TransportError {
  try {
    openTransport(url, creds, opts).close();
  } catch (err) {
    expect(err).to.be.instanceOf(TransportError);
    return err as TransportError;
  }
  throw new Error(`expected openTransport(${url}) to fail`);
}

describe('openTransport', () => {
  it('hands isomorphic-git the http(s) URL without trailing slashes', () => {
    const t = openTransport('https://git.example.com/org/repo.git/', {}, opts);
    expect(t.url).to.equal('https://git.example.com/org/repo.git');
    t.close();
  });

  it('gives SSH repositories a stand-in http URL that resolves nowhere', () => {
    const t = openTransport(
      'ssh://git@git.example.com:2222/org/repo.git',
      { knownHosts: `[git.example.com]:2222 ${hostKey}` },
      opts,
    );
    expect(t.url).to.equal('http://ssh.invalid/org/repo.git');
    t.close();
  });

  it('refuses other schemes', () => {
    for (const url of ['git://git.example.com/repo.git', 'ftp://git.example.com/repo.git', 'file:///srv/repo.git']) {
      const err = openError(url);
      expect(err.kind).to.equal('protocol');
      expect(err.message).to.match(/^unsupported URL scheme "(git|ftp|file)"/);
    }
  });

  it('refuses scp-like addresses and says how to write them', () => {
    const err = openError('git@github.com:org/repo.git');
    expect(err.kind).to.equal('protocol');
    expect(err.message).to.contain('ssh://user@host/path');
  });

  it('refuses credentials in URLs without repeating them', () => {
    for (const url of [
      'https://alice:pa55word@git.example.com/repo.git',
      'ssh://git:pa55word@git.example.com/repo.git',
    ]) {
      const err = openError(url, { knownHosts: `git.example.com ${hostKey}` });
      expect(err.kind).to.equal('protocol');
      expect(err.message).not.to.contain('pa55word');
    }
  });

  it('does not echo a malformed URL', () => {
    const err = openError('https://alice:pa55word@[not-a-host/repo.git');
    expect(err.kind).to.equal('protocol');
    expect(err.message).not.to.contain('pa55word');
  });

  it('requires known_hosts for SSH', () => {
    const err = openError('ssh://git@git.example.com/repo.git', { knownHosts: '# nothing here\n' });
    expect(err.kind).to.equal('hostkey');
    expect(err.message).to.contain('no known_hosts');
    expect(err.message).to.contain('git.example.com:22');
  });

  it('rejects an SSH identity whose passphrase is wrong or missing', function () {
    this.timeout(10_000);
    const { private: identity } = ssh2.utils.generateKeyPairSync('ed25519', {
      passphrase: 'right',
      cipher: 'aes256-ctr',
      rounds: 1,
    });
    const creds = { knownHosts: `git.example.com ${hostKey}`, identity };
    expect(openError('ssh://git@git.example.com/repo.git', { ...creds, identityPassphrase: 'wrong' })).to.include({
      kind: 'auth',
    });
    expect(openError('ssh://git@git.example.com/repo.git', creds).message).to.contain('passphrase is missing');
    openTransport('ssh://git@git.example.com/repo.git', { ...creds, identityPassphrase: 'right' }, opts).close();
  });

  it('rejects an identity that is not a private key', () => {
    const err = openError('ssh://git@git.example.com/repo.git', {
      knownHosts: `git.example.com ${hostKey}`,
      identity: hostKey,
    });
    expect(err.kind).to.equal('auth');
  });
});
