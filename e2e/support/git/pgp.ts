// Signed commits and tags made the way people make them: gpg keys and `git commit-tree -S` /
// `git tag -s`, in a throwaway GNUPGHOME.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { git } from './repos.ts';
import { execFile } from 'node:child_process';

export interface GpgKey {
  home: string;
  fingerprint: string;
  armoredPublicKey: string;
}

function gpg(home: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'gpg',
      ['--homedir', home, '--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args],
      (err, stdout, stderr) => {
        if (err) reject(new Error(`gpg ${args.join(' ')}: ${stderr}`));
        else resolve(stdout);
      },
    );
  });
}

export async function createGpgKey(name: string): Promise<GpgKey> {
  const home = mkdtempSync(join(tmpdir(), 'tide-gpg-'));
  await gpg(home, [
    '--quick-gen-key',
    `${name} <${name.toLowerCase().replace(/\W+/g, '.')}@example.com>`,
    'ed25519',
    'sign',
    'never',
  ]);
  const listing = await gpg(home, ['--with-colons', '--list-secret-keys']);
  const fingerprint = listing
    .split('\n')
    .find((l) => l.startsWith('fpr:'))!
    .split(':')[9]!;
  const armoredPublicKey = await gpg(home, ['--armor', '--export', fingerprint]);
  return { home, fingerprint, armoredPublicKey };
}

const env = (key: GpgKey) => ({
  ...process.env,
  GNUPGHOME: key.home,
  GIT_AUTHOR_NAME: 'Tide Test',
  GIT_AUTHOR_EMAIL: 'test@example.com',
  GIT_COMMITTER_NAME: 'Tide Test',
  GIT_COMMITTER_EMAIL: 'test@example.com',
});

/** Adds a signed commit (same tree as the tip) on top of `branch`; returns its SHA. */
export async function signedCommit(
  repoPath: string,
  branch: string,
  key: GpgKey,
  message = 'signed commit',
): Promise<string> {
  const tip = await git(['rev-parse', `refs/heads/${branch}`], { cwd: repoPath });
  const sha = await git(['commit-tree', `${tip}^{tree}`, '-p', tip, `-S${key.fingerprint}`, '-m', message], {
    cwd: repoPath,
    env: env(key),
  });
  await git(['update-ref', `refs/heads/${branch}`, sha], { cwd: repoPath });
  return sha;
}

/** Creates a signed annotated tag on `target`; returns the tag object's SHA. */
export async function signedTag(repoPath: string, name: string, target: string, key: GpgKey): Promise<string> {
  await git(['tag', '-s', '-u', key.fingerprint, '-m', `release ${name}`, name, target], {
    cwd: repoPath,
    env: env(key),
  });
  return git(['rev-parse', `refs/tags/${name}`], { cwd: repoPath });
}
