// tide-controller's image, checked where no Docker engine runs: the Dockerfile's rules (every base
// pinned, a numeric non-root USER, no devDependencies, ENTRYPOINT tide-controller, the Go tools on
// PATH by their flags' default names) on the real file and on broken copies of it; the files it
// takes from the build context exist after `make build` and .dockerignore lets them through; what
// `make build` compiles needs no devDependency at run time.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, posix, relative } from 'node:path';
import { kustomizeFlags } from '../../controllers/kustomize/setup.ts';
import { sharedFlags } from '../../controllers/runtime/setup.ts';
import {
  checkDockerfile,
  compileStage,
  contextSources,
  dockerignored,
  type Expectations,
  parseDockerfile,
} from '../support/dockerfile.ts';

const root = join(import.meta.dirname, '..', '..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const dockerfile = read('Dockerfile');
const dockerignore = read('.dockerignore');

function newest(versions: string[]): string {
  const key = (v: string) => v.split('.').map((n) => n.padStart(6, '0'));
  return versions.sort((a, b) => (key(a).join('.') < key(b).join('.') ? -1 : 1)).at(-1)!;
}

/** What the image must hold, from the files that decide it: Makefile, build.sh, the flags, package.json. */
function expectations(): Expectations {
  const nodeVersion = /^NODE_VERSION := (\S+)$/m.exec(read('Makefile'))?.[1];
  if (!nodeVersion) throw new Error('the Makefile sets no NODE_VERSION');
  const buildSh = read('e2e/controlplane/build.sh');
  const tools = [
    { name: kustomizeFlags['kustomize-path'].default!, flag: 'kustomize-path' },
    { name: kustomizeFlags['sops-path'].default!, flag: 'sops-path' },
    { name: sharedFlags['helm-helper-path'].default!, flag: 'helm-helper-path' },
  ].map(({ name, flag }) => {
    // build.sh's tools: "name=package[@module directory relative to e2e/controlplane]".
    const m = new RegExp(`"${name}=([^"@]+)(?:@([^"]+))?"`).exec(buildSh);
    if (!m) throw new Error(`e2e/controlplane/build.sh builds no ${name}`);
    return { name, flag, pkg: m[1]!, moduleDir: posix.normalize(posix.join('e2e/controlplane', m[2] ?? '.')) };
  });
  const goVersion = newest(
    tools.map((t) => {
      const v = /^go (\S+)$/m.exec(read(`${t.moduleDir}/go.mod`))?.[1];
      if (!v) throw new Error(`${t.moduleDir}/go.mod has no go directive`);
      return v;
    }),
  );
  const bin = (JSON.parse(read('package.json')) as { bin: Record<string, string> }).bin['tide-controller']!;
  // sops decrypts OpenPGP keys through gpg, which keeps secret keys in gpg-agent
  // (controllers/kustomize/render/decrypt.ts).
  return { root, nodeVersion, goVersion, bin, tools, packages: ['gpg', 'gpg-agent'] };
}

const e = expectations();
const check = (text: string) => checkDockerfile(text, e);

/** The Dockerfile with `from` replaced (every occurrence); fails when `from` is not in it. */
function broken(from: string | RegExp, to: string): string {
  const changed = dockerfile.replaceAll(from instanceof RegExp ? new RegExp(from, 'gm') : from, to);
  if (changed === dockerfile) throw new Error(`the Dockerfile has no ${from}: update this test`);
  return changed;
}

describe('Dockerfile', () => {
  it('pins its bases; runs tide-controller as a numeric non-root user, without devDependencies, with its tools', () => {
    expect(check(dockerfile)).to.deep.equal([]);
    // The final image is the one Kubernetes runs: its user and entrypoint as the chart expects them.
    const final = parseDockerfile(dockerfile).at(-1)!;
    expect(final.instructions.filter((i) => i.keyword === 'USER').map((i) => i.args)).to.deep.equal(['65532:65532']);
    expect(final.instructions.find((i) => i.keyword === 'ENTRYPOINT')?.exec?.at(-1)).to.equal('tide-controller');
  });

  it('copies from the build context only files that exist after make build and .dockerignore lets through', () => {
    const sources = contextSources(dockerfile);
    expect(sources.map((s) => s.source)).to.include.members(['package.json', 'package-lock.json', 'controllers']);
    for (const { source, line } of sources) {
      expect(existsSync(join(root, source)), `line ${line}: COPY ${source}`).to.equal(true);
      expect(dockerignored(dockerignore, source), `line ${line}: ${source} is in .dockerignore`).to.equal(false);
    }
    // The entrypoint make build compiles: runnable through its shebang, an ES module by dist/package.json.
    const main = join(root, e.bin);
    expect(existsSync(main), `${e.bin} (run make build first)`).to.equal(true);
    expect(readFileSync(main, 'utf8')).to.match(/^#!\/usr\/bin\/env node\n/);
    expect(JSON.parse(readFileSync(join(root, 'dist', 'package.json'), 'utf8')).type).to.equal('module');
  });

  it('runs on production dependencies: dist/ imports no package outside package.json "dependencies"', () => {
    const dependencies = new Set(
      Object.keys((JSON.parse(read('package.json')) as { dependencies: object }).dependencies),
    );
    const imported = new Map<string, string>();
    // Static imports and exports as tsc writes them (from the start of a line), import(), require().
    const before = [
      String.raw`^(?:import|export)\b[^;]*?\bfrom\s*`,
      String.raw`^import\s*`,
      String.raw`\bimport\(\s*`,
      String.raw`\brequire\(\s*`,
      String.raw`createRequire\([^)]*\)\(\s*`,
    ];
    const specifiers = new RegExp(`(?:${before.join('|')})['"]([^'"]+)['"]`, 'gm');
    for (const file of readdirSync(join(root, 'dist'), { recursive: true, encoding: 'utf8' })) {
      if (!file.endsWith('.js')) continue;
      for (const [, spec] of readFileSync(join(root, 'dist', file), 'utf8').matchAll(specifiers)) {
        if (/^(\.|\/|node:)/.test(spec!) || builtinModules.includes(spec!)) continue;
        const name = spec!
          .split('/')
          .slice(0, spec!.startsWith('@') ? 2 : 1)
          .join('/');
        if (!imported.has(name)) imported.set(name, file);
      }
    }
    expect([...imported.keys()]).to.include.members(['@kubernetes/client-node', 'isomorphic-git', 'ssh2']);
    const outside = [...imported].filter(([name]) => !dependencies.has(name)).map(([n, f]) => `${n} (dist/${f})`);
    expect(outside).to.deep.equal([]);
  });

  it('leaves the working tree’s node_modules, dist, .git and local state out of the build context', () => {
    for (const path of ['node_modules/chai/package.json', 'dist/controllers/main.js', '.git/HEAD', '.tide/kubeconfig'])
      expect(dockerignored(dockerignore, path), path).to.equal(true);
    expect(dockerignored(dockerignore, 'controllers/runtime/manager.test.ts')).to.equal(true);
  });

  it('gives the stage that compiles every file tsc -p tsconfig.build.json reads', function () {
    this.timeout(120_000);
    const compile = compileStage(dockerfile, root);
    if (!compile) throw new Error('no stage runs tsc -p tsconfig.build.json');
    const listed = execFileSync(
      process.execPath,
      [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--listFilesOnly'],
      { cwd: root, encoding: 'utf8', maxBuffer: 1 << 26 },
    );
    const files = listed
      .split('\n')
      .filter(Boolean)
      .map((f) => relative(root, f))
      .filter((f) => !f.startsWith('node_modules/'));
    expect(files).to.include('controllers/main.ts');
    const missing = files.filter(
      (f) => compile.contextFile(posix.join(compile.dir, f)) !== f || dockerignored(dockerignore, f),
    );
    expect(missing, `not in stage ${compile.stage} at ${compile.dir}`).to.deep.equal([]);
  });
});

describe('the Dockerfile check', () => {
  const problems = (text: string) => check(text).join('\n');

  it('refuses a base that is not pinned by exact version and digest', () => {
    const latest = problems(broken(/^FROM golang:\S+/, 'FROM golang:latest'));
    expect(latest).to.include('FROM golang:latest: the tag "latest" is not an exact version');
    expect(latest).to.include('FROM golang:latest: not pinned by digest');
    expect(problems(broken(/^FROM golang:([^@\s]+)@\S+/, 'FROM golang:$1'))).to.match(
      /^FROM golang:[\d.]+-trixie: not pinned by digest/,
    );
    expect(problems(broken(/node:[\d.]+-trixie-slim@/, 'node:24-trixie-slim@'))).to.match(
      /the tag "24-trixie-slim" is not an exact version/,
    );
    const small = problems('FROM node\nUSER 1000\nENTRYPOINT ["tide-controller"]\n');
    expect(small).to.include('FROM node: the tag "latest" is not an exact version');
    expect(small).to.include('FROM node: not pinned by digest');
    expect(small).to.include('the final stage is based on node, not a node slim image');
  });

  it('refuses a Node.js other than the Makefile’s and a Go older than the modules need', () => {
    expect(problems(broken(/node:[\d.]+-trixie-slim@/, 'node:24.20.0-trixie-slim@'))).to.include(
      `Node.js 24.20.0, but the Makefile's NODE_VERSION is ${e.nodeVersion}`,
    );
    expect(problems(broken(/golang:[\d.]+-trixie@/, 'golang:1.25.9-trixie@'))).to.include(
      `Go 1.25.9 is older than the modules' go directive ${e.goVersion}`,
    );
  });

  it('refuses root, a user by name, and no USER', () => {
    expect(problems(broken('USER 65532:65532', 'USER 0'))).to.include('USER 0: root');
    expect(problems(broken('USER 65532:65532', 'USER node'))).to.include('USER node: not numeric');
    expect(problems(broken('USER 65532:65532', ''))).to.include('the final stage runs as root: it sets no USER');
  });

  it('refuses devDependencies in the final image, however they get there', () => {
    expect(
      problems(broken('COPY --from=deps /app/node_modules node_modules/', 'RUN npm ci --ignore-scripts')),
    ).to.match(/the final stage installs devDependencies/);
    expect(problems(broken('npm ci --omit=dev', 'npm ci'))).to.match(
      /\/app\/node_modules comes from stage deps, whose npm install at line \d+ includes devDependencies/,
    );
    expect(problems(broken('npm ci --omit=dev', 'npm ci --omit=dev --include=dev'))).to.match(
      /includes devDependencies/,
    );
    expect(problems(broken('COPY --from=deps /app/node_modules', 'COPY --from=build /app/node_modules'))).to.match(
      /comes from stage build, whose npm install/,
    );
    expect(problems(broken('COPY --from=deps /app/node_modules node_modules/', 'COPY --from=build /app/ ./'))).to.match(
      /comes from stage build, whose npm install/,
    );
    expect(
      problems(broken('COPY --from=deps /app/node_modules node_modules/', 'COPY node_modules/ node_modules/')),
    ).to.match(/\/app\/node_modules comes from the build context/);
    expect(problems(broken('COPY --from=deps /app/node_modules node_modules/', ''))).to.match(
      /no node_modules where \/app\/dist\/controllers\/main.js looks for its packages/,
    );
  });

  it('refuses an entrypoint other than the compiled tide-controller', () => {
    const entrypoint = /^ENTRYPOINT .*$/;
    expect(problems(broken(entrypoint, 'ENTRYPOINT tide-controller'))).to.include('ENTRYPOINT in shell form');
    expect(problems(broken(entrypoint, 'ENTRYPOINT ["/usr/bin/tini", "--", "tide"]'))).to.include(
      'ENTRYPOINT runs tide, not tide-controller',
    );
    expect(problems(broken(entrypoint, 'ENTRYPOINT ["node"]'))).to.include('runs node without a script');
    expect(problems(broken(/ln -s \S+ \/usr\/local\/bin\/tide-controller/, 'true'))).to.include(
      'ENTRYPOINT runs tide-controller, which the final stage does not put on PATH',
    );
    expect(
      problems(broken('ln -s /app/dist/controllers/main.js', 'ln -s /app/dist/controllers/cli/main.js')),
    ).to.include(
      'the entrypoint runs /app/dist/controllers/cli/main.js of stage build, not its /app/dist/controllers/main.js',
    );
    expect(problems(broken(/chmod 0755 \S+ /, ''))).to.include('does not chmod it executable');
    expect(problems(broken(', "tide-controller"]', ', "node", "/app/dist/controllers/main.js"]'))).to.deep.equal('');
    expect(problems(broken(' gpg-agent tini ', ' gpg-agent '))).to.include(
      'the init /usr/bin/tini is neither installed nor copied',
    );
  });

  it('refuses a Go tool missing from PATH or built from another module than build.sh’s', () => {
    expect(problems(broken('/out/kustomize /out/sops ', '/out/kustomize '))).to.include(
      'sops (the default of --sops-path) is not on PATH',
    );
    expect(problems(broken('-o /out/tide-helm', '-o /out/helper'))).to.include(
      'tide-helm: stage tools has no `go build -o /out/tide-helm`',
    );
    expect(
      problems(
        broken(
          'COPY e2e/controlplane/sops/go.mod e2e/controlplane/sops/go.sum ./',
          'COPY e2e/controlplane/go.mod e2e/controlplane/go.sum ./',
        ),
      ),
    ).to.match(/sops is built in \/src\/e2e\/controlplane\/sops, whose go.mod is not e2e\/controlplane\/sops\/go.mod/);
    expect(problems(broken('sigs.k8s.io/kustomize/kustomize/v5', 'sigs.k8s.io/kustomize/kustomize/v4'))).to.include(
      'kustomize is built from sigs.k8s.io/kustomize/kustomize/v4, not sigs.k8s.io/kustomize/kustomize/v5',
    );
    expect(problems(broken(' gpg gpg-agent ', ' '))).to.include(
      'the final stage does not install gpg (apt-get install)',
    );
  });

  it('reads .dockerignore as Docker does: the last matching pattern wins, parents match, ! lets back in', () => {
    const ignore = '*\n!controllers/\ncontrollers/**/*.test.ts\n!e2e/go.mod\n';
    expect(dockerignored(ignore, 'controllers/runtime/manager.ts')).to.equal(false);
    expect(dockerignored(ignore, 'controllers/x.test.ts')).to.equal(true);
    expect(dockerignored(ignore, 'controllers/a/b/x.test.ts')).to.equal(true);
    expect(dockerignored(ignore, 'e2e/go.mod')).to.equal(false);
    expect(dockerignored(ignore, 'e2e/go.sum')).to.equal(true);
    expect(dockerignored(ignore, 'README.md')).to.equal(true);
    expect(dockerignored('dist\n', 'dist/controllers/main.js')).to.equal(true);
    expect(dockerignored('dist\n', 'controllers/dist.ts')).to.equal(false);
  });
});
