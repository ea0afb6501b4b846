import { expect } from 'chai';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { IncludePathError, cleanPath, mergeIncludes } from './include.ts';

async function writeTar(file: string, entries: Record<string, string>): Promise<void> {
  const pack = tar.pack();
  const done = pipeline(pack, createGzip(), createWriteStream(file));
  for (const [name, content] of Object.entries(entries)) pack.entry({ name, mode: 0o644, mtime: new Date(0) }, content);
  pack.finalize();
  await done;
}

async function readTar(file: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const extract = tar.extract();
  const reading = pipeline(createReadStream(file), createGunzip(), extract);
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    out[entry.header.name] = Buffer.concat(chunks).toString();
  }
  await reading;
  return out;
}

describe('spec.include merging', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-include-'));

  it('copies fromPath of each include to toPath, replacing what the base had there', async () => {
    await writeTar(join(dir, 'base.tar.gz'), { 'app/kustomization.yaml': 'base', 'vendor/old.yaml': 'stale' });
    await writeTar(join(dir, 'lib.tar.gz'), {
      'deploy/k8s/a.yaml': 'A',
      'deploy/k8s/sub/b.yaml': 'B',
      'README.md': 'skip',
    });
    await writeTar(join(dir, 'all.tar.gz'), { 'x.yaml': 'X' });
    const out = join(dir, 'out.tar.gz');
    const { digest, size } = await mergeIncludes(
      join(dir, 'base.tar.gz'),
      [
        { file: join(dir, 'lib.tar.gz'), fromPath: 'deploy/k8s', toPath: 'vendor' },
        { file: join(dir, 'all.tar.gz'), fromPath: '', toPath: 'all' },
      ],
      out,
    );
    expect(await readTar(out)).to.deep.equal({
      'app/kustomization.yaml': 'base',
      'vendor/a.yaml': 'A',
      'vendor/sub/b.yaml': 'B',
      'all/x.yaml': 'X',
    });
    expect(size).to.equal(readFileSync(out).length);
    const again = join(dir, 'again.tar.gz');
    const second = await mergeIncludes(
      join(dir, 'base.tar.gz'),
      [
        { file: join(dir, 'lib.tar.gz'), fromPath: 'deploy/k8s', toPath: 'vendor' },
        { file: join(dir, 'all.tar.gz'), fromPath: '', toPath: 'all' },
      ],
      again,
    );
    expect(second.digest).to.equal(digest, 'reproducible');
  });

  it('normalises paths and refuses ones that leave the artifact', () => {
    expect(cleanPath('./deploy/', 'fromPath')).to.equal('deploy');
    expect(cleanPath('', 'fromPath')).to.equal('');
    expect(() => cleanPath('../x', 'toPath')).to.throw(IncludePathError, "toPath '../x' points outside the artifact");
  });
});
