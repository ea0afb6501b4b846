import { expect } from 'chai';
import { GENERAL, readCommandLine, usage } from './flags.ts';
import { selectControllers } from './registry.ts';
import { parseOptions } from './runtime/options.ts';
import { flagGroup } from './runtime/setup.ts';
import { kustomize } from './kustomize/setup.ts';
import { source } from './source/setup.ts';

describe('tide-controller flags', () => {
  it('has Flux defaults', () => {
    expect(parseOptions(GENERAL, readCommandLine([]))).to.include({
      controllers: 'all',
      metricsAddr: ':8080',
      healthAddr: ':9440',
      concurrent: 4,
      watchAllNamespaces: true,
      logLevel: 'info',
      logEncoding: 'json',
      minRetryDelay: 750,
      maxRetryDelay: 900_000,
      enableLeaderElection: false,
      leaderElectionLeaseDuration: 35_000,
      gracefulShutdownTimeout: 30_000,
    });
    expect(parseOptions(flagGroup(source), readCommandLine([]))).to.deep.equal({
      storagePath: 'data',
      storageAddr: ':9090',
      artifactRetentionRecords: 2,
      gitMaxSize: 1024 ** 3,
      helmIndexMaxSize: 50 * 1024 ** 2,
      helmChartMaxSize: 10 * 1024 ** 2,
      helmHelperPath: 'tide-helm',
    });
    expect(parseOptions(flagGroup(kustomize), readCommandLine([]))).to.deep.equal({
      requeueDependency: 30_000,
      kustomizePath: 'kustomize',
      sopsPath: 'sops',
      noCrossNamespaceRefs: false,
      defaultServiceAccount: '',
      watchConfigsLabelSelector: 'reconcile.fluxcd.io/watch=Enabled',
    });
  });

  it('reads the manager and every controller from one command line', () => {
    const args = readCommandLine([
      '--enable-leader-election',
      '--watch-all-namespaces=false',
      '--concurrent',
      '8',
      '--log-level=debug',
      '--artifact-retention-records=5',
      '--no-cross-namespace-refs',
    ]);
    expect(parseOptions(GENERAL, args)).to.include({
      enableLeaderElection: true,
      watchAllNamespaces: false,
      concurrent: 8,
      logLevel: 'debug',
    });
    expect(parseOptions(flagGroup(source), args).artifactRetentionRecords).to.equal(5);
    expect(parseOptions(flagGroup(kustomize), args).noCrossNamespaceRefs).to.equal(true);
  });

  it('names the controller of a bad value', () => {
    const args = readCommandLine(['--requeue-dependency=abc', '--git-max-size=0', '--log-level=loud']);
    expect(() => parseOptions(flagGroup(kustomize), args)).to.throw(
      'invalid --requeue-dependency="abc" (kustomize controller): expected a Go duration',
    );
    expect(() => parseOptions(flagGroup(source), args)).to.throw('invalid --git-max-size="0" (source controller)');
    expect(() => parseOptions(GENERAL, args)).to.throw(
      'invalid --log-level="loud": expected one of trace, debug, info, error',
    );
  });

  it('rejects unknown flags and bad booleans', () => {
    expect(() => readCommandLine(['--nope'])).to.throw(/nope/);
    expect(() => parseOptions(GENERAL, readCommandLine(['--enable-leader-election=maybe']))).to.throw(
      /expected true or false/,
    );
  });

  it('groups --help by controller', () => {
    const text = usage();
    const sections = [...text.matchAll(/^(\S.*):$/gm)].map((m) => m[1]);
    expect(sections).to.deep.equal([
      'General',
      'source controller',
      'kustomize controller',
      'helm controller',
      'image controller',
    ]);
    expect(text).to.include('  --git-max-size bytes (default 1073741824)\n');
  });

  it('rejects unknown controller names', () => {
    expect(() => selectControllers('source,foo')).to.throw(/unknown foo/);
    expect(selectControllers('all').selected.map((c) => c.name)).to.deep.equal([
      'source',
      'kustomize',
      'helm',
      'image',
    ]);
  });
});
