// Runs `kustomize build`. The process gets no PATH (so it cannot run git) and a proxy that
// refuses every connection (so it cannot fetch a URL): if a remote reference ever gets past
// checkReferences, kustomize fails instead of reaching the network.
import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { BuildError } from './errors.ts';

export interface KustomizeOptions {
  /** The kustomize binary: a path, or a name looked up on PATH (flag --kustomize-path). */
  kustomizePath: string;
  timeoutMs: number;
}

const DEAD_PROXY = 'http://127.0.0.1:9';

async function resolveBinary(name: string): Promise<string> {
  if (name.includes('/')) return name;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new BuildError(`kustomize binary '${name}' not found on PATH; install kustomize or set --kustomize-path`);
}

/** kustomize's message without its "Error: " prefix and with `root` shown as the artifact root. */
function cleanMessage(stderr: string, root: string): string {
  return stderr
    .replaceAll(`${root}/`, '')
    .replaceAll(root, '.')
    .trim()
    .replace(/^Error:\s*/, '');
}

/** Builds the kustomization in `dir` and returns the YAML stream; `root` only tidies messages. */
export async function runKustomize(root: string, dir: string, opts: KustomizeOptions): Promise<string> {
  const binary = await resolveBinary(opts.kustomizePath);
  // Overlays reaching a sibling base (`../base`) are the common Flux layout, so kustomize may load
  // anything; checkReferences has already refused every file and base outside the artifact.
  const args = ['build', dir, '--load-restrictor', 'LoadRestrictionsNone'];
  const env = {
    PATH: '',
    HOME: root,
    HTTP_PROXY: DEAD_PROXY,
    HTTPS_PROXY: DEAD_PROXY,
    http_proxy: DEAD_PROXY,
    https_proxy: DEAD_PROXY,
  };
  return new Promise((resolvePromise, reject) => {
    const child = spawn(binary, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        new BuildError(
          e.code === 'ENOENT'
            ? `kustomize binary '${binary}' not found; set --kustomize-path`
            : `running kustomize: ${e.message}`,
        ),
      );
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) return reject(new BuildError(`kustomize build timed out after ${opts.timeoutMs}ms`));
      if (code === 0) return resolvePromise(Buffer.concat(out).toString('utf8'));
      const message = cleanMessage(Buffer.concat(err).toString('utf8'), root);
      reject(new BuildError(`kustomize build failed: ${message || `exit ${code ?? signal}`}`));
    });
  });
}
