import { expect } from 'chai';
import { checkHostKey, fingerprint, keysForHost, knownHostsName, parseKnownHosts } from './known-hosts.ts';

// Keys and hashed lines made with ssh-keygen (-t ed25519 / -t ecdsa, then `ssh-keygen -H`), so the
// parser is checked against OpenSSH's own output.
const ed25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEis1hDuYn1ZSd/rVAXnsqjuVFTGs72Ww2LAbZBrwCvz';
const ed25519Fingerprint = 'SHA256:lup+0N2vqjtLjbmFZWAOrVSl1okZuZoIkLaYWbCQf7g';
const ecdsa =
  'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBDbvbQd4xArArw0QwCjDBq5OABQk' +
  'e+tFashKVHTmg4agg8B1KLBx0mjJbsTJBzfm6gHpnRECWKabx6yKe8fXgC8=';
const ecdsaFingerprint = 'SHA256:zTkG3sXWhsVXplOcSCbLi9dHuJd3XM5m6iGn+5TbZF4';
const rsa =
  'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCZGnifiPAfiZcmc+mWmm2mgy9JOmLH5QrjlALNd9EpAakCh8TaZTR/Mca3QtLA' +
  'c4gX4DJBKm7VmOKEufRxVtmbjdNInNuS8uxzRjviSOH+Xlb0otb6TgELD2UbTaRSplcGYgJvuE1jkSJ58cTNk+6shlEXcdNGdWaM' +
  'yCihAZC6cQ==';
// `[127.0.0.1]:2222 <ed25519>` and `git.example.com <ecdsa>`, hashed.
const hashedEd25519 = `|1|gmLL/Wee7UWgiQpk87XV1O+cmWQ=|ggwCcYAKuXSk7TymvFc/HF/XFcM= ${ed25519}`;
const hashedEcdsa = `|1|05f2495/hxYdL08v5UEdOezqrFY=|4NyEwcRQ8C25dNsoYio48WTRBhA= ${ecdsa}`;

const blob = (line: string) => Buffer.from(line.split(' ')[1]!, 'base64');

describe('known_hosts', () => {
  it('names hosts as OpenSSH does: bare on port 22, [host]:port otherwise', () => {
    expect(knownHostsName('GitHub.com', 22)).to.equal('github.com');
    expect(knownHostsName('127.0.0.1', 2222)).to.equal('[127.0.0.1]:2222');
  });

  it('parses key lines and skips comments, blanks, markers it cannot honour and corrupt keys', () => {
    const entries = parseKnownHosts(
      [
        '# a comment',
        '',
        `github.com ${ed25519} a trailing comment`,
        `@cert-authority *.example.com ${ecdsa}`,
        `broken.example.com ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAAAgQCZ`,
        `typo.example.com ${rsa.replace('ssh-rsa', 'ssh-ed25519')}`,
        `@revoked * ${rsa}`,
      ].join('\n'),
    );
    expect(entries.map((e) => [e.hosts, e.type, e.revoked])).to.deep.equal([
      ['github.com', 'ssh-ed25519', false],
      ['*', 'ssh-rsa', true],
    ]);
  });

  it('accepts the listed key for a plain host name, case-insensitively, on port 22 only', () => {
    const entries = parseKnownHosts(`github.com ${ed25519}\n`);
    expect(checkHostKey(entries, 'GITHUB.COM', 22, blob(ed25519))).to.deep.equal({ ok: true });
    expect(checkHostKey(entries, 'github.com', 2222, blob(ed25519))).to.deep.equal({
      ok: false,
      reason: 'unknown-host',
    });
  });

  it('matches [host]:port entries only on that port', () => {
    const entries = parseKnownHosts(`[127.0.0.1]:2222 ${ed25519}\n`);
    expect(checkHostKey(entries, '127.0.0.1', 2222, blob(ed25519)).ok).to.equal(true);
    expect(checkHostKey(entries, '127.0.0.1', 22, blob(ed25519))).to.deep.equal({ ok: false, reason: 'unknown-host' });
    expect(checkHostKey(entries, '127.0.0.1', 2223, blob(ed25519))).to.deep.equal({
      ok: false,
      reason: 'unknown-host',
    });
  });

  it('matches comma lists, wildcards and negations', () => {
    const entries = parseKnownHosts(
      `git.example.com,[git.example.com]:2222,10.0.0.1 ${ed25519}\n*.corp.example,!evil.corp.example ${ecdsa}\n`,
    );
    expect(checkHostKey(entries, '10.0.0.1', 22, blob(ed25519)).ok).to.equal(true);
    expect(checkHostKey(entries, 'git.example.com', 2222, blob(ed25519)).ok).to.equal(true);
    expect(checkHostKey(entries, 'git.corp.example', 22, blob(ecdsa)).ok).to.equal(true);
    expect(checkHostKey(entries, 'evil.corp.example', 22, blob(ecdsa))).to.deep.equal({
      ok: false,
      reason: 'unknown-host',
    });
  });

  it('matches hashed entries written by ssh-keygen -H', () => {
    const entries = parseKnownHosts(`${hashedEd25519}\n${hashedEcdsa}\n`);
    expect(checkHostKey(entries, '127.0.0.1', 2222, blob(ed25519)).ok).to.equal(true);
    expect(checkHostKey(entries, 'git.example.com', 22, blob(ecdsa)).ok).to.equal(true);
    expect(checkHostKey(entries, '127.0.0.1', 22, blob(ed25519))).to.deep.equal({ ok: false, reason: 'unknown-host' });
    expect(keysForHost(entries, 'git.example.com', 22).map((e) => e.type)).to.deep.equal(['ecdsa-sha2-nistp256']);
  });

  it('reports a key the host is not listed with as a mismatch', () => {
    const entries = parseKnownHosts(`github.com ${ed25519}\n[127.0.0.1]:2222 ${ecdsa}\n`);
    expect(checkHostKey(entries, 'github.com', 22, blob(ecdsa))).to.deep.equal({ ok: false, reason: 'mismatch' });
    expect(checkHostKey(entries, 'github.com', 22, blob(rsa))).to.deep.equal({ ok: false, reason: 'mismatch' });
  });

  it('accepts any of several keys listed for one host', () => {
    const entries = parseKnownHosts(`github.com ${ed25519}\ngithub.com ${ecdsa}\n`);
    expect(checkHostKey(entries, 'github.com', 22, blob(ecdsa)).ok).to.equal(true);
    expect(checkHostKey(entries, 'github.com', 22, blob(ed25519)).ok).to.equal(true);
  });

  it('refuses a revoked key even where another line lists it', () => {
    const entries = parseKnownHosts(`github.com ${ed25519}\n@revoked * ${ed25519}\n`);
    expect(checkHostKey(entries, 'github.com', 22, blob(ed25519))).to.deep.equal({ ok: false, reason: 'revoked' });
  });

  it('prints SHA256 fingerprints as ssh-keygen -l does', () => {
    expect(fingerprint(blob(ed25519))).to.equal(ed25519Fingerprint);
    expect(fingerprint(blob(ecdsa))).to.equal(ecdsaFingerprint);
  });
});
