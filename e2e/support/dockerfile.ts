// Reads a Dockerfile as `docker build` would, far enough to check tide-controller's image where no
// Docker engine runs: its stages, what each COPY brings from where, the commands of its RUNs. Then
// the rules of issue 13: every base pinned, a numeric non-root user, no dev dependencies, the
// entrypoint running the compiled tide-controller, and the Go tools on PATH under the names the
// flags default to, each built from the module e2e/controlplane/build.sh builds it from.
import { existsSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';

export interface Instruction {
  /** Upper case: FROM, RUN, COPY, … */
  keyword: string;
  /** Its --name=value options (--from, --chown, --platform, …); a bare --name has the value ''. */
  flags: Record<string, string>;
  /** The rest of the line, continuations joined. */
  args: string;
  /** The JSON (exec) form, when it is one. */
  exec?: string[];
  /** Where it starts (1-based). */
  line: number;
}

export interface Stage {
  index: number;
  name?: string;
  /** The image or earlier stage it starts from, global ARGs substituted. */
  base: string;
  /** The earlier stage it starts from. */
  parent?: Stage;
  instructions: Instruction[];
}

/** A Dockerfile's stages; comment lines are dropped, also inside continued lines. */
export function parseDockerfile(text: string): Stage[] {
  const logical: { text: string; line: number }[] = [];
  let current: { text: string; line: number } | undefined;
  text.split('\n').forEach((raw, i) => {
    const trimmed = raw.trim();
    if (trimmed.startsWith('#') || trimmed === '') return;
    const continued = /\\\s*$/.test(raw);
    const part = (continued ? raw.replace(/\\\s*$/, '') : raw).trim();
    if (current) current.text += ` ${part}`;
    else current = { text: part, line: i + 1 };
    if (!continued) {
      logical.push(current);
      current = undefined;
    }
  });
  if (current) logical.push(current);

  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const { text: l, line } of logical) {
    const m = /^(\S+)\s*(.*)$/.exec(l)!;
    const keyword = m[1]!.toUpperCase();
    let rest = m[2]!;
    const flags: Record<string, string> = {};
    for (let f = /^--([\w-]+)(?:=(\S*))?\s*/.exec(rest); f; f = /^--([\w-]+)(?:=(\S*))?\s*/.exec(rest)) {
      flags[f[1]!] = f[2] ?? '';
      rest = rest.slice(f[0].length);
    }
    const instruction: Instruction = { keyword, flags, args: rest, line };
    if (rest.startsWith('[')) {
      try {
        const parsed: unknown = JSON.parse(rest);
        if (Array.isArray(parsed) && parsed.every((a) => typeof a === 'string')) instruction.exec = parsed;
      } catch {
        // the shell form, starting with '['
      }
    }
    if (keyword === 'FROM') {
      const [image = '', as, name] = substitute(rest, globalArgs).split(/\s+/);
      const parent = stages.find((s) => s.name !== undefined && s.name === image.toLowerCase());
      stages.push({
        index: stages.length,
        name: as?.toUpperCase() === 'AS' ? name?.toLowerCase() : undefined,
        base: image,
        parent,
        instructions: [],
      });
    } else if (stages.length === 0) {
      if (keyword === 'ARG') {
        const [name, value = ''] = rest.split('=', 2) as [string, string?];
        globalArgs.set(name.trim(), value.trim().replace(/^["']|["']$/g, ''));
      }
    } else {
      stages.at(-1)!.instructions.push(instruction);
    }
  }
  return stages;
}

function substitute(text: string, args: Map<string, string>): string {
  return text.replace(/\$\{(\w+)[^}]*\}|\$(\w+)/g, (whole, a: string | undefined, b: string | undefined) => {
    return args.get((a ?? b)!) ?? whole;
  });
}

/** Shell words: quotes removed, && ; | as words of their own. Enough for the commands of a RUN. */
function shellWords(command: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (c === "'" || c === '"') {
      const end = command.indexOf(c, i + 1);
      word = (word ?? '') + command.slice(i + 1, end < 0 ? undefined : end);
      i = end < 0 ? command.length : end;
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === ';' || c === '|' || (c === '&' && command[i + 1] === '&')) {
      if (word !== undefined) words.push(word);
      word = undefined;
      const op = c === '&' || (c === '|' && command[i + 1] === '|') ? `${c}${c}` : c;
      words.push(op);
      i += op.length - 1;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** The simple commands of a shell line (split at && || ; |), each as words. */
function commands(command: string): string[][] {
  const out: string[][] = [[]];
  for (const w of shellWords(command)) {
    if (['&&', '||', ';', '|'].includes(w)) out.push([]);
    else out.at(-1)!.push(w);
  }
  return out.filter((c) => c.length > 0);
}

// ---- what a stage holds ---------------------------------------------------------------------

interface Copy {
  /** The stage it copies from, or an image name; undefined: the build context. */
  from?: Stage | string;
  /** Context sources from the context's root; stage sources absolute. */
  sources: string[];
  /** Absolute. */
  dest: string;
  /** A file source lands in dest, or in dest/<its name> when this holds. */
  intoDir: boolean;
  line: number;
}

interface Run {
  /** The simple command, words. */
  words: string[];
  /** Its directory: WORKDIR, then any `cd` before it in the same RUN. */
  dir: string | undefined;
  line: number;
}

/** One stage read in order: its WORKDIR at each step, its COPYs and the commands its RUNs run. */
class StageView {
  readonly stage: Stage;
  readonly parent?: StageView;
  readonly copies: Copy[] = [];
  readonly runs: Run[] = [];
  readonly workdirs: string[] = [];
  readonly problems: string[] = [];
  workdir: string | undefined;
  user: string | undefined;
  entrypoint: Instruction | undefined;
  path: string | undefined;
  private readonly views: readonly StageView[];
  private readonly root: string;

  constructor(stage: Stage, views: readonly StageView[], root: string) {
    this.stage = stage;
    this.views = views;
    this.root = root;
    this.parent = stage.parent ? views[stage.parent.index] : undefined;
    // An image's WORKDIR is not known here: a relative path before a WORKDIR is reported.
    this.workdir = this.parent?.workdir;
    this.user = this.parent?.user;
    this.entrypoint = this.parent?.entrypoint;
    this.path = this.parent?.path;
    for (const ins of stage.instructions) this.read(ins);
  }

  private read(ins: Instruction): void {
    switch (ins.keyword) {
      case 'WORKDIR': {
        const dir = this.resolve(ins.args.trim(), ins);
        if (dir) {
          this.workdir = dir;
          this.workdirs.push(dir);
        }
        return;
      }
      case 'USER':
        this.user = ins.args.trim();
        return;
      case 'ENTRYPOINT':
        this.entrypoint = ins;
        return;
      case 'ENV': {
        const m = /(?:^|\s)PATH[= ]\s*"?([^"\s]+)/.exec(ins.args);
        if (m) this.path = m[1];
        return;
      }
      case 'RUN': {
        if (/<<-?\s*["']?\w/.test(ins.args))
          this.problems.push(`line ${ins.line}: a heredoc in RUN is not read by this check; write the commands out`);
        let dir = this.workdir;
        for (const words of commands(ins.exec ? ins.exec.join(' ') : ins.args)) {
          if (words[0] === 'cd' && words[1]) dir = dir === undefined ? undefined : posix.resolve(dir, words[1]);
          else this.runs.push({ words, dir, line: ins.line });
        }
        return;
      }
      case 'COPY':
      case 'ADD': {
        const parts = ins.exec ?? shellWords(ins.args);
        if (parts.length < 2) {
          this.problems.push(`line ${ins.line}: ${ins.keyword} needs a source and a destination`);
          return;
        }
        const rawDest = parts.at(-1)!;
        const dest = this.resolve(rawDest, ins);
        if (dest === undefined) return;
        const fromFlag = ins.flags.from?.toLowerCase();
        const from =
          fromFlag === undefined
            ? undefined
            : (this.views.find((v) => v.stage.name === fromFlag || String(v.stage.index) === fromFlag)?.stage ??
              ins.flags.from);
        const sources = parts.slice(0, -1).map((s) => (from === undefined ? contextPath(s) : posix.resolve('/', s)));
        this.copies.push({ from, sources, dest, intoDir: rawDest.endsWith('/') || sources.length > 1, line: ins.line });
      }
    }
  }

  private resolve(p: string, ins: Instruction): string | undefined {
    if (p.includes('$')) {
      this.problems.push(`line ${ins.line}: ${ins.keyword} ${p}: variables are not resolved by this check`);
      return undefined;
    }
    if (p.startsWith('/')) return posix.resolve(p);
    if (this.workdir === undefined) {
      this.problems.push(
        `line ${ins.line}: ${ins.keyword} ${p} is relative before any WORKDIR of stage ${label(this.stage)}, ` +
          "and the base image's directory is not known here",
      );
      return undefined;
    }
    return posix.resolve(this.workdir, p);
  }

  /** The stages from the first image to this one. */
  chain(): StageView[] {
    return this.parent ? [...this.parent.chain(), this] : [this];
  }

  allRuns(): Run[] {
    return this.chain().flatMap((v) => v.runs);
  }

  /**
   * Whether `path` is a directory or a file in this stage, as far as its instructions tell: what
   * `go build -o` writes is a file; WORKDIRs, what npm installs (node_modules) and tsc compiles
   * (dist) are directories, and so are their parents; a COPY passes on what its source is.
   */
  kind(path: string): 'dir' | 'file' | undefined {
    if (path === '/') return 'dir';
    const runs = this.allRuns();
    const dirs = [
      ...this.chain().flatMap((v) => v.workdirs),
      ...npmInstalls(runs).flatMap((i) => (i.dir ? [posix.join(i.dir, 'node_modules')] : [])),
      ...runs.filter(isTsc).flatMap((r) => (r.dir ? [posix.join(r.dir, 'dist')] : [])),
    ];
    if (dirs.some((d) => d === path || d.startsWith(`${path}/`))) return 'dir';
    if (runs.some((r) => r.dir && r.words.includes('tsconfig.build.json') && path.startsWith(`${r.dir}/dist/`)))
      return posix.extname(path) ? 'file' : 'dir';
    for (const r of runs) {
      const output = goBuild(r.words)?.output;
      if (output && r.dir && posix.resolve(r.dir, output) === path) return 'file';
    }
    const origin = this.origin(path);
    if (!origin || typeof origin.from === 'string') return undefined;
    if (origin.from === undefined) return isDir(join(this.root, origin.source)) ? 'dir' : 'file';
    return this.views[origin.from.index]!.kind(origin.source);
  }

  /**
   * Where the file or directory at `path` came from: the last COPY that wrote it (a directory
   * source brings what is under it, into dest), or undefined when no COPY of this stage or its
   * parents did.
   */
  origin(path: string): { from?: Stage | string; source: string; line: number } | undefined {
    for (const view of this.chain().reverse()) {
      for (const copy of [...view.copies].reverse()) {
        for (const source of copy.sources) {
          const kind =
            copy.from === undefined
              ? isDir(join(this.root, source))
                ? 'dir'
                : 'file'
              : typeof copy.from === 'string'
                ? undefined
                : this.views[copy.from.index]!.kind(source);
          if (kind === 'dir') {
            if (path === copy.dest || path.startsWith(`${copy.dest}/`))
              return { from: copy.from, source: posix.join(source, path.slice(copy.dest.length)), line: copy.line };
          } else if (path === (copy.intoDir ? posix.join(copy.dest, posix.basename(source)) : copy.dest)) {
            return { from: copy.from, source, line: copy.line };
          }
        }
      }
    }
    return undefined;
  }

  /** `ln -s target link` of this stage or its parents: link (absolute) → target (absolute). */
  links(): Map<string, string> {
    const out = new Map<string, string>();
    for (const run of this.allRuns()) {
      if (run.words[0] !== 'ln' || !run.words.some((w) => /^-[a-zA-Z]*s/.test(w))) continue;
      const [target, link] = run.words.slice(1).filter((w) => !w.startsWith('-'));
      if (!target || !link || run.dir === undefined) continue;
      const linkPath = posix.resolve(run.dir, link);
      out.set(linkPath, posix.resolve(posix.dirname(linkPath), target));
    }
    return out;
  }
}

const isTsc = (r: Run) => ['tsc', 'npx'].includes(r.words[0]!) && r.words.includes('tsconfig.build.json');

/** A source of the build context as a path from its root. */
function contextPath(source: string): string {
  return posix.normalize(source.replace(/^\/+/, '')).replace(/\/+$/, '') || '.';
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function label(stage: Stage): string {
  return stage.name ?? String(stage.index);
}

// ---- the rules ------------------------------------------------------------------------------

export interface GoTool {
  /** The file name on PATH: the default of its flag. */
  name: string;
  /** The flag whose default it is, for messages. */
  flag: string;
  /** Its module directory in the repository and its package, as build.sh builds it. */
  moduleDir: string;
  pkg: string;
}

export interface Expectations {
  /** The repository root: which context sources are directories. */
  root: string;
  /** The Makefile's NODE_VERSION. */
  nodeVersion: string;
  /** The highest go directive of the Go modules built. */
  goVersion: string;
  /** package.json's bin for tide-controller, e.g. dist/controllers/main.js. */
  bin: string;
  tools: GoTool[];
  /** Debian packages the final image must have (the programs the controllers run besides the Go tools). */
  packages: string[];
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const INITS = ['tini', 'tini-static', 'dumb-init'];

/** Compares dotted versions: <0, 0, >0. */
function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** An image reference: repository (last path part), tag and digest. */
function imageRef(ref: string): { repo: string; tag?: string; digest?: string } {
  const [name, digest] = ref.split('@', 2) as [string, string?];
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  const tag = colon > slash ? name.slice(colon + 1) : undefined;
  const path = colon > slash ? name.slice(0, colon) : name;
  return { repo: path.slice(path.lastIndexOf('/') + 1), tag, digest };
}

/** The problems of an image reference of FROM or COPY --from: pinned by exact version and digest. */
function pinProblems(ref: string, where: string, e: Expectations): string[] {
  const { repo, tag, digest } = imageRef(ref);
  const problems: string[] = [];
  const version = /^v?(\d+\.\d+\.\d+)(?:$|[-+._])/.exec(tag ?? '')?.[1];
  if (!tag || !version) problems.push(`${where} ${ref}: the tag "${tag ?? 'latest'}" is not an exact version (x.y.z)`);
  if (!digest || !/^sha256:[0-9a-f]{64}$/.test(digest))
    problems.push(`${where} ${ref}: not pinned by digest (@sha256:<64 hex digits>)`);
  if (version && repo === 'node' && version !== e.nodeVersion)
    problems.push(`${where} ${ref}: Node.js ${version}, but the Makefile's NODE_VERSION is ${e.nodeVersion}`);
  if (version && repo === 'golang' && compareVersions(version, e.goVersion) < 0)
    problems.push(`${where} ${ref}: Go ${version} is older than the modules' go directive ${e.goVersion}`);
  return problems;
}

/** npm ci / npm install commands, with whether they install devDependencies. */
function npmInstalls(runs: Run[]): { dev: boolean; dir: string | undefined; line: number }[] {
  return runs
    .filter((r) => r.words[0] === 'npm' && ['ci', 'clean-install', 'install', 'i', 'add'].includes(r.words[1] ?? ''))
    .map((r) => {
      const omitted = r.words.some((w, i) => w === '--omit=dev' || (w === '--omit' && r.words[i + 1] === 'dev'));
      const included = r.words.some((w, i) => w === '--include=dev' || (w === '--include' && r.words[i + 1] === 'dev'));
      return { dev: !omitted || included, dir: r.dir, line: r.line };
    });
}

/** What `go build` writes and builds, from its words. */
function goBuild(words: string[]): { output?: string; packages: string[] } | undefined {
  if (words[0] !== 'go' || words[1] !== 'build') return undefined;
  const valued = ['-o', '-ldflags', '-gcflags', '-asmflags', '-tags', '-mod', '-C', '-p', '-pgo', '-modfile'];
  let output: string | undefined;
  const packages: string[] = [];
  for (let i = 2; i < words.length; i++) {
    const w = words[i]!;
    if (w.startsWith('-o=')) output = w.slice(3);
    else if (w === '-o') output = words[++i];
    else if (valued.includes(w)) i++;
    else if (!w.startsWith('-')) packages.push(w);
  }
  return { output, packages };
}

/** Every rule the Dockerfile breaks, each as a sentence; none: it passes. */
export function checkDockerfile(text: string, e: Expectations): string[] {
  const stages = parseDockerfile(text);
  if (stages.length === 0) return ['no FROM: not a Dockerfile'];
  const views: StageView[] = [];
  for (const stage of stages) views.push(new StageView(stage, views, e.root));
  const problems = views.flatMap((v) => v.problems);
  const final = views.at(-1)!;

  // Bases pinned; the final image on the Node.js release of the Makefile, slim.
  for (const v of views) {
    if (!v.parent && v.stage.base !== 'scratch') problems.push(...pinProblems(v.stage.base, 'FROM', e));
    for (const copy of v.copies)
      if (typeof copy.from === 'string') problems.push(...pinProblems(copy.from, `line ${copy.line}: COPY --from`, e));
  }
  const finalBase = imageRef(final.chain()[0]!.stage.base);
  if (finalBase.repo !== 'node' || !finalBase.tag?.includes('slim'))
    problems.push(`the final stage is based on ${final.chain()[0]!.stage.base}, not a node slim image`);

  // A numeric user other than root.
  if (final.user === undefined) problems.push('the final stage runs as root: it sets no USER');
  else {
    const m = /^(\d+)(?::(\d+))?$/.exec(final.user);
    if (!m) problems.push(`USER ${final.user}: not numeric (runAsNonRoot cannot verify a name)`);
    else if (Number(m[1]) === 0) problems.push(`USER ${final.user}: root`);
  }

  // No dev dependencies anywhere in the final image.
  for (const install of npmInstalls(final.allRuns()).filter((i) => i.dev))
    problems.push(`line ${install.line}: the final stage installs devDependencies (npm ci without --omit=dev)`);

  // The entrypoint: tide-controller, compiled from package.json's bin.
  const entry = entrypointFile(final, problems);
  if (entry) {
    checkCompiled(views, final, entry, e, problems);
    checkNodeModules(views, final, entry.file, e.root, problems);
  }

  // The Go tools, on PATH by their flags' default names, built from build.sh's modules.
  const pathDirs = (final.path ?? DEFAULT_PATH).split(':');
  const links = final.links();
  for (const tool of e.tools) {
    const onPath = pathDirs.map((d) => posix.join(d, tool.name)).find((p) => links.has(p) || final.origin(p));
    const origin = onPath ? final.origin(links.get(onPath) ?? onPath) : undefined;
    if (!onPath || !origin) {
      problems.push(`${tool.name} (the default of --${tool.flag}) is not on PATH in the final stage`);
      continue;
    }
    if (!origin.from || typeof origin.from === 'string') {
      problems.push(
        `${tool.name}: copied from ${origin.from ?? 'the build context'}, not built from ${tool.moduleDir}`,
      );
      continue;
    }
    const tools = views[origin.from.index]!;
    const build = tools
      .allRuns()
      .map((r) => ({ run: r, go: goBuild(r.words) }))
      .find(({ run, go }) => go?.output && run.dir && posix.resolve(run.dir, go.output) === origin.source);
    if (!build) {
      problems.push(`${tool.name}: stage ${label(origin.from)} has no \`go build -o ${origin.source}\``);
      continue;
    }
    if (!build.go!.packages.includes(tool.pkg))
      problems.push(
        `line ${build.run.line}: ${tool.name} is built from ${build.go!.packages.join(' ') || '.'}, not ${tool.pkg}`,
      );
    for (const file of ['go.mod', 'go.sum']) {
      const source = tools.origin(posix.join(build.run.dir!, file));
      if (!source || source.from !== undefined || source.source !== `${tool.moduleDir}/${file}`)
        problems.push(
          `line ${build.run.line}: ${tool.name} is built in ${build.run.dir}, whose ${file} is not ` +
            `${tool.moduleDir}/${file} (the pins build.sh uses)`,
        );
    }
  }

  // The other programs the controllers run.
  const installed = new Set(
    final
      .allRuns()
      .filter((r) => ['apt-get', 'apt'].includes(r.words[0]!) && r.words.includes('install'))
      .flatMap((r) => r.words.slice(r.words.indexOf('install') + 1).filter((w) => !w.startsWith('-')))
      .map((w) => w.split('=')[0]),
  );
  for (const pkg of e.packages)
    if (!installed.has(pkg)) problems.push(`the final stage does not install ${pkg} (apt-get install)`);
  return problems;
}

/** The file the ENTRYPOINT runs (after an init), and whether through node or its shebang. */
function entrypointFile(final: StageView, problems: string[]): { file: string; viaNode: boolean } | undefined {
  const ins = final.entrypoint;
  if (!ins) {
    problems.push('the final stage has no ENTRYPOINT');
    return undefined;
  }
  if (!ins.exec) {
    problems.push(`line ${ins.line}: ENTRYPOINT in shell form: /bin/sh would get the signals, not tide-controller`);
    return undefined;
  }
  let argv = ins.exec;
  if (INITS.includes(posix.basename(argv[0] ?? ''))) {
    const init = argv[0]!;
    const installed =
      final.origin(init) ||
      final.allRuns().some((r) => r.words.includes('install') && r.words.includes(posix.basename(init)));
    if (!installed) problems.push(`line ${ins.line}: the init ${init} is neither installed nor copied`);
    argv = argv.slice(argv[1] === '--' ? 2 : 1);
  }
  const [command = '', script] = argv;
  if (posix.basename(command) === 'node') {
    if (!script) {
      problems.push(`line ${ins.line}: ENTRYPOINT runs node without a script, not tide-controller`);
      return undefined;
    }
    return { file: posix.resolve(final.workdir ?? '/', script), viaNode: true };
  }
  if (posix.basename(command) !== 'tide-controller') {
    problems.push(`line ${ins.line}: ENTRYPOINT runs ${command}, not tide-controller`);
    return undefined;
  }
  const links = final.links();
  const candidates = command.includes('/')
    ? [posix.resolve(final.workdir ?? '/', command)]
    : (final.path ?? DEFAULT_PATH).split(':').map((d) => posix.join(d, command));
  const found = candidates.find((p) => links.has(p) || final.origin(p));
  if (!found) {
    problems.push(`line ${ins.line}: ENTRYPOINT runs tide-controller, which the final stage does not put on PATH`);
    return undefined;
  }
  return { file: links.get(found) ?? found, viaNode: false };
}

/** The entry file must be package.json's bin as `tsc -p tsconfig.build.json` compiles it, executable. */
function checkCompiled(
  views: StageView[],
  final: StageView,
  entry: { file: string; viaNode: boolean },
  e: Expectations,
  problems: string[],
): void {
  const origin = final.origin(entry.file);
  if (!origin) {
    problems.push(`the entrypoint's ${entry.file} is not copied into the final stage`);
    return;
  }
  if (origin.from === undefined) {
    if (origin.source !== e.bin) problems.push(`the entrypoint is ${origin.source} of the context, not ${e.bin}`);
    return;
  }
  if (typeof origin.from === 'string') {
    problems.push(`the entrypoint comes from the image ${origin.from}, not from ${e.bin} compiled here`);
    return;
  }
  const build = views[origin.from.index]!;
  const tsc = build.allRuns().find((r) => isTsc(r) && r.dir);
  if (!tsc) {
    problems.push(
      `stage ${label(origin.from)}, where the entrypoint comes from, does not run tsc -p tsconfig.build.json`,
    );
    return;
  }
  const compiled = posix.join(tsc.dir!, e.bin);
  if (origin.source !== compiled)
    problems.push(`the entrypoint runs ${origin.source} of stage ${label(origin.from)}, not its ${compiled}`);
  else if (
    !entry.viaNode &&
    !build
      .allRuns()
      .some(
        (r) =>
          r.words[0] === 'chmod' && r.words.some((w) => w === e.bin || (r.dir && posix.resolve(r.dir, w) === compiled)),
      )
  )
    problems.push(`${e.bin} runs through its shebang, but stage ${label(origin.from)} does not chmod it executable`);
}

/** The node_modules the entry file resolves its packages from must hold production dependencies only. */
function checkNodeModules(views: StageView[], final: StageView, file: string, root: string, problems: string[]): void {
  const dirs: string[] = [];
  for (let d = posix.dirname(file); ; d = posix.dirname(d)) {
    dirs.push(posix.join(d, 'node_modules'));
    if (d === '/') break;
  }
  // A copied directory says nothing of what is under it: a node_modules that nothing installs or
  // copies there is not there, and Node looks one directory up.
  next: for (const dir of dirs) {
    // Installed right there in the final stage: the devDependencies rule covers it.
    if (npmInstalls(final.allRuns()).some((i) => i.dir && posix.join(i.dir, 'node_modules') === dir)) return;
    for (let origin = final.origin(dir); origin; ) {
      const { from, source } = origin;
      if (from === undefined) {
        if (!existsSync(join(root, source))) continue next;
        problems.push(`${dir} comes from the build context (the working tree's, devDependencies included)`);
        return;
      }
      if (typeof from === 'string') {
        problems.push(`${dir} comes from the image ${from}`);
        return;
      }
      const view = views[from.index]!;
      const install = npmInstalls(view.allRuns()).find((i) => i.dir && posix.join(i.dir, 'node_modules') === source);
      if (install?.dev)
        problems.push(
          `${dir} comes from stage ${label(from)}, whose npm install at line ${install.line} includes devDependencies`,
        );
      if (install) return;
      origin = view.origin(source);
    }
  }
  problems.push(`no node_modules where ${file} looks for its packages`);
}

// ---- the build context ----------------------------------------------------------------------

/** The sources COPY and ADD take from the build context, as paths from its root. */
export function contextSources(text: string): { source: string; line: number }[] {
  return parseDockerfile(text).flatMap((s) =>
    s.instructions
      .filter((i) => (i.keyword === 'COPY' || i.keyword === 'ADD') && i.flags.from === undefined)
      .flatMap((i) =>
        (i.exec ?? shellWords(i.args)).slice(0, -1).map((source) => ({ source: contextPath(source), line: i.line })),
      ),
  );
}

function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      i++;
      if (pattern[i + 1] === '/') {
        i++;
        re += '(?:.*/)?';
      } else re += '.*';
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[' && pattern.indexOf(']', i) > i) {
      const end = pattern.indexOf(']', i);
      re += pattern.slice(i, end + 1).replace('[!', '[^');
      i = end;
    } else re += c.replace(/[.+^${}()|\\/[\]]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/**
 * Whether .dockerignore keeps `path` (from the context's root) out of the build context: the last
 * pattern matching it or one of its parent directories decides, `!` bringing it back, as Docker
 * reads the file.
 */
export function dockerignored(dockerignore: string, path: string): boolean {
  const parts = path.split('/');
  let excluded = false;
  for (const raw of dockerignore.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const negated = line.startsWith('!');
    const pattern = posix.normalize((negated ? line.slice(1) : line).trim().replace(/^\/+/, '')).replace(/\/+$/, '');
    const re = globToRegExp(pattern);
    if (parts.some((_, i) => re.test(parts.slice(0, i + 1).join('/')))) excluded = !negated;
  }
  return excluded;
}

/**
 * The stage that runs `tsc -p tsconfig.build.json`, its directory there, and what of the build
 * context each path under it was copied from (undefined: not from the context).
 */
export function compileStage(
  text: string,
  root: string,
): { stage: string; dir: string; contextFile: (path: string) => string | undefined } | undefined {
  const views: StageView[] = [];
  for (const stage of parseDockerfile(text)) views.push(new StageView(stage, views, root));
  for (const view of views) {
    const tsc = view.runs.find((r) => isTsc(r) && r.dir);
    if (!tsc) continue;
    return {
      stage: label(view.stage),
      dir: tsc.dir!,
      contextFile: (path) => {
        const origin = view.origin(path);
        return origin && origin.from === undefined ? origin.source : undefined;
      },
    };
  }
  return undefined;
}
