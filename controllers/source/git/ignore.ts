// Which paths of a checkout stay out of the artifact, with Flux's rules: `.sourceignore` files
// (gitignore syntax, scoped to their directory) and `spec.ignore`, over a default list.
import ignore from 'ignore';
import type { Ignore } from 'ignore';

/** Version-control files: excluded whatever the user writes, unless a user pattern re-includes them. */
export const VCS_EXCLUSIONS = `${['.git/', '.gitignore', '.gitmodules', '.gitattributes'].join('\n')}\n`;

/** What Flux excludes when neither `.sourceignore` files nor `spec.ignore` give any pattern. */
export const DEFAULT_EXCLUSIONS =
  VCS_EXCLUSIONS +
  [
    '*.jpg',
    '*.jpeg',
    '*.gif',
    '*.png',
    '*.wmv',
    '*.flv',
    '*.tar.gz',
    '*.zip',
    '.github/',
    '.circleci/',
    '.travis.yml',
    '.gitlab-ci.yml',
    'appveyor.yml',
    '.drone.yml',
    'cloudbuild.yaml',
    'codeship-services.yml',
    'codeship-steps.yml',
    '**/.goreleaser.yml',
    '**/.sops.yaml',
    '**/.flux.yaml',
  ].join('\n') +
  '\n';

export const SOURCEIGNORE = '.sourceignore';

export interface SourceIgnoreFile {
  /** Directory holding the file, posix, relative to the repository root; '' for the root. */
  dir: string;
  content: string;
}

export type ExcludeFn = (path: string, isDir: boolean) => boolean;

interface Layer {
  dir: string;
  rules: Ignore;
}

type Verdict = 'excluded' | 'included' | undefined;

// Flux counts a line as a pattern unless it is blank or starts with '#'.
function hasPatterns(content: string): boolean {
  return content.split(/\r?\n/).some((line) => line.trim() !== '' && !line.startsWith('#'));
}

function layer(dir: string, content: string): Layer {
  // git and Flux match case-sensitively; the ignore package does not by default.
  return { dir, rules: ignore({ ignoreCase: false }).add(content) };
}

// A layer's own say on a path: matched by an exclusion, by a negation, or silent. A negation of
// a parent directory counts as a say on everything below it, as it does in Flux's matcher.
function verdict(l: Layer, rel: string, isDir: boolean): Verdict {
  const r = l.rules.test(isDir ? `${rel}/` : rel);
  if (r.ignored) return 'excluded';
  if (r.unignored) return 'included';
  for (let i = rel.lastIndexOf('/'); i > 0; i = rel.lastIndexOf('/', i - 1)) {
    if (l.rules.test(rel.slice(0, i + 1)).unignored) return 'included';
  }
  return undefined;
}

/**
 * Builds the exclusion test for a checkout. As in Flux, patterns from any `.sourceignore` or from
 * `spec.ignore` replace the default list (only the VCS entries stay); later sources win over
 * earlier ones: defaults, then `.sourceignore` files from the root down, then `spec.ignore`.
 * Within one source, gitignore rules apply (the last matching line wins; a file under an
 * excluded directory cannot be re-included by the same source).
 */
export function makeMatcher(opts: { specIgnore?: string; sourceIgnores: SourceIgnoreFile[] }): ExcludeFn {
  const files = opts.sourceIgnores
    .filter((f) => hasPatterns(f.content))
    .map((f) => ({ dir: f.dir.replace(/^\/+|\/+$/g, ''), content: f.content }))
    // A parent sorts before its children, so deeper files take precedence, like Flux's walk.
    .sort((a, b) => (a.dir < b.dir ? -1 : a.dir > b.dir ? 1 : 0));
  const spec = opts.specIgnore !== undefined && hasPatterns(opts.specIgnore) ? opts.specIgnore : undefined;
  const custom = files.length > 0 || spec !== undefined;

  const layers: Layer[] = [layer('', custom ? VCS_EXCLUSIONS : DEFAULT_EXCLUSIONS)];
  for (const f of files) layers.push(layer(f.dir, f.content));
  if (spec !== undefined) layers.push(layer('', spec));
  layers.reverse();

  return (path, isDir) => {
    for (const l of layers) {
      let rel = path;
      if (l.dir !== '') {
        if (!path.startsWith(`${l.dir}/`)) continue;
        rel = path.slice(l.dir.length + 1);
      }
      const v = verdict(l, rel, isDir);
      if (v !== undefined) return v === 'excluded';
    }
    return false;
  };
}
