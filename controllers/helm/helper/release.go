package main

// Release ops: install, upgrade, test, rollback, uninstall and unlock Helm releases, and read their
// history and manifests, in Helm's own storage (the "secret" driver, so that the helm CLI sees the
// same releases). They only execute: which op runs when, retries and remediation are decided by
// the caller. Values and rendered manifests are never logged.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"k8s.io/client-go/discovery"

	"helm.sh/helm/v4/pkg/action"
	ci "helm.sh/helm/v4/pkg/chart"
	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/kube"
	"helm.sh/helm/v4/pkg/postrenderer"
	ri "helm.sh/helm/v4/pkg/release"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	release "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage/driver"
)

func init() {
	// The field manager of what releases apply. Tide's other controllers apply as Flux's do
	// (source-controller, kustomize-controller); releases do as Flux's helm-controller, so that
	// objects move between Flux and Tide without server-side apply conflicts.
	kube.ManagedFieldsManager = "helm-controller"
	if m := os.Getenv("TIDE_HELM_FIELD_MANAGER"); m != "" {
		kube.ManagedFieldsManager = m
	}
}

const (
	defaultTimeout = 5 * time.Minute
	// contextMargin is how long after its timeout an op's context is cancelled: Helm applies the
	// timeout to each wait and hook; the context stops what hangs beyond them.
	contextMargin = 30 * time.Second
	// defaultHistoryMax is how many releases release.history returns when not told.
	defaultHistoryMax = 10
	unlockDescription = "Release unlocked from stale state"
	// crdEstablishTimeout is how long applied CRDs may take to be established (Helm's figure).
	crdEstablishTimeout = 60 * time.Second
)

// Params common to every release op.
type releaseRef struct {
	Target target `json:"target"`
	Name   string `json:"name"`
}

func (r releaseRef) check() error {
	if r.Name == "" {
		return fail("InvalidParams", "name is required")
	}
	if err := chartutil.ValidateReleaseName(r.Name); err != nil {
		return fail("InvalidParams", "release name %q: %v", r.Name, err)
	}
	return nil
}

// deployParams are the params install and upgrade share.
type deployParams struct {
	releaseRef
	Chart                    string         `json:"chart"`
	Namespace                string         `json:"namespace"`
	Values                   map[string]any `json:"values"`
	TimeoutMs                int64          `json:"timeoutMs"`
	Wait                     bool           `json:"wait"`
	WaitForJobs              bool           `json:"waitForJobs"`
	DisableHooks             bool           `json:"disableHooks"`
	DisableOpenAPIValidation bool           `json:"disableOpenAPIValidation"`
	DisableSchemaValidation  bool           `json:"disableSchemaValidation"`
	CRDs                     string         `json:"crds"`
	Force                    bool           `json:"force"`
	// ForceConflicts takes over fields other managers own (server-side apply only), without the
	// replacement Force means when server-side apply is off.
	ForceConflicts     bool            `json:"forceConflicts"`
	Description        string          `json:"description"`
	PostRender         *postRenderSpec `json:"postRender"`
	PostRenderStrategy string          `json:"postRenderStrategy"`
	// ChartVersion, when set, replaces the chart's version (a chart from an OCI artifact carries
	// the artifact digest in its version, so that a new push of one version is a new release).
	ChartVersion string `json:"chartVersion"`
	// TakeOwnership adopts objects that exist without Helm's ownership metadata (Flux's default).
	TakeOwnership bool `json:"takeOwnership"`
	// LegacyWait waits by Helm 3's polling instead of kstatus.
	LegacyWait bool `json:"legacyWait"`
}

type installParams struct {
	deployParams
	Replace         bool  `json:"replace"`
	CreateNamespace bool  `json:"createNamespace"`
	ServerSideApply *bool `json:"serverSideApply"`
}

type upgradeParams struct {
	deployParams
	ServerSideApply applyMode `json:"serverSideApply"`
	MaxHistory      int       `json:"maxHistory"`
	PreserveValues  bool      `json:"preserveValues"`
	CleanupOnFail   bool      `json:"cleanupOnFail"`
}

// applyMode is "true", "false" or "auto" (JSON booleans are taken too).
type applyMode string

func (m *applyMode) UnmarshalJSON(data []byte) error {
	var s string
	if json.Unmarshal(data, &s) == nil {
		*m = applyMode(s)
		return nil
	}
	var b bool
	if err := json.Unmarshal(data, &b); err != nil {
		return errors.New(`serverSideApply must be "true", "false" or "auto"`)
	}
	*m = applyMode(strconv.FormatBool(b))
	return nil
}

type historyParams struct {
	releaseRef
	Max int `json:"max"`
}

type testParams struct {
	releaseRef
	TimeoutMs int64               `json:"timeoutMs"`
	Filters   map[string][]string `json:"filters"`
}

type rollbackParams struct {
	releaseRef
	Version        int   `json:"version"`
	TimeoutMs      int64 `json:"timeoutMs"`
	Wait           bool  `json:"wait"`
	WaitForJobs    bool  `json:"waitForJobs"`
	DisableHooks   bool  `json:"disableHooks"`
	Force          bool  `json:"force"`
	ForceConflicts bool  `json:"forceConflicts"`
	LegacyWait     bool  `json:"legacyWait"`
	CleanupOnFail  bool  `json:"cleanupOnFail"`
	MaxHistory     int   `json:"maxHistory"`
}

type uninstallParams struct {
	releaseRef
	TimeoutMs           int64  `json:"timeoutMs"`
	Wait                bool   `json:"wait"`
	DisableHooks        bool   `json:"disableHooks"`
	KeepHistory         bool   `json:"keepHistory"`
	DeletionPropagation string `json:"deletionPropagation"`
}

type manifestParams struct {
	releaseRef
	Version int `json:"version"`
}

// releaseInfo describes one release record.
type releaseInfo struct {
	Name         string `json:"name"`
	Namespace    string `json:"namespace"`
	Version      int    `json:"version"`
	Status       string `json:"status"`
	ChartName    string `json:"chartName"`
	ChartVersion string `json:"chartVersion"`
	AppVersion   string `json:"appVersion"`
	// ConfigDigest is valuesDigest of the values the release was given (not the chart's).
	ConfigDigest string `json:"configDigest"`
	// Digest is the sha256 of the JSON encoding of the whole record: it changes with any change
	// of the record (its status included).
	Digest        string                  `json:"digest"`
	FirstDeployed string                  `json:"firstDeployed,omitempty"`
	LastDeployed  string                  `json:"lastDeployed,omitempty"`
	Deleted       string                  `json:"deleted,omitempty"`
	Description   string                  `json:"description"`
	Labels        map[string]string       `json:"labels,omitempty"`
	TestHooks     map[string]testHookInfo `json:"testHooks,omitempty"`
	HasTests      bool                    `json:"hasTests"`
}

// testHookInfo is the last run of a test hook; all empty when it never ran.
type testHookInfo struct {
	LastStarted   string `json:"lastStarted,omitempty"`
	LastCompleted string `json:"lastCompleted,omitempty"`
	Phase         string `json:"phase"`
}

type historyResult struct {
	Releases []releaseInfo `json:"releases"`
}

type uninstallResult struct {
	Info    *releaseInfo `json:"info,omitempty"`
	Message string       `json:"message"`
}

type manifestResult struct {
	Manifest  string `json:"manifest"`
	Namespace string `json:"namespace"`
}

// Ops: each checks its params, builds the Configuration of its target and runs the core
// function, which takes the Configuration (tests give it Helm's fakes instead).

func releaseHistoryOp(p historyParams) (any, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	cfg, err := configFor(p.Target, "")
	if err != nil {
		return nil, err
	}
	return history(cfg, p.Name, p.Max)
}

func releaseInstallOp(p installParams) (any, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	if p.Namespace == "" {
		return nil, fail("InvalidParams", "namespace is required")
	}
	timeout, err := opTimeout(p.TimeoutMs)
	if err != nil {
		return nil, err
	}
	cfg, err := configFor(p.Target, p.Namespace)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+contextMargin)
	defer cancel()
	return install(ctx, cfg, p)
}

func releaseUpgradeOp(p upgradeParams) (any, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	timeout, err := opTimeout(p.TimeoutMs)
	if err != nil {
		return nil, err
	}
	cfg, err := configFor(p.Target, p.Namespace)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+contextMargin)
	defer cancel()
	return upgrade(ctx, cfg, p)
}

func releaseTestOp(p testParams) (any, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	timeout, err := opTimeout(p.TimeoutMs)
	if err != nil {
		return nil, err
	}
	cfg, err := configFor(p.Target, "")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+contextMargin)
	defer cancel()
	return test(ctx, cfg, p)
}

func releaseRollbackOp(p rollbackParams) (any, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	timeout, err := opTimeout(p.TimeoutMs)
	if err != nil {
		return nil, err
	}
	cfg, err := configFor(p.Target, "")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+contextMargin)
	defer cancel()
	return rollback(ctx, cfg, p)
}

func releaseUninstallOp(p uninstallParams) (any, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	timeout, err := opTimeout(p.TimeoutMs)
	if err != nil {
		return nil, err
	}
	cfg, err := configFor(p.Target, "")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+contextMargin)
	defer cancel()
	return uninstall(ctx, cfg, p)
}

func releaseUnlockOp(p releaseRef) (any, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	cfg, err := configFor(p.Target, "")
	if err != nil {
		return nil, err
	}
	return unlock(cfg, p.Name)
}

func releaseManifestOp(p manifestParams) (any, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	cfg, err := configFor(p.Target, "")
	if err != nil {
		return nil, err
	}
	return manifest(cfg, p.Name, p.Version)
}

// opTimeout is Helm's timeout of an op: timeoutMs, or defaultTimeout when 0.
func opTimeout(ms int64) (time.Duration, error) {
	switch {
	case ms < 0:
		return 0, fail("InvalidParams", "timeoutMs must not be negative")
	case ms == 0:
		return defaultTimeout, nil
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// waitStrategy: without wait only hooks are waited for; with it, everything, by kstatus (Helm 4's
// default, Flux's "poller") or, when legacy, by Helm 3's periodic polling.
func waitStrategy(wait bool, legacy bool) kube.WaitStrategy {
	switch {
	case !wait:
		return kube.HookOnlyStrategy
	case legacy:
		return kube.LegacyStrategy
	default:
		return kube.StatusWatcherStrategy
	}
}

// history: the release's records, newest first, at most limit (0: 10; negative: all).
func history(cfg *action.Configuration, name string, limit int) (any, error) {
	rels, err := releases(cfg, name)
	if err != nil {
		return nil, err
	}
	if limit == 0 {
		limit = defaultHistoryMax
	}
	if limit > 0 && len(rels) > limit {
		rels = rels[:limit]
	}
	res := historyResult{Releases: []releaseInfo{}}
	for _, rel := range rels {
		res.Releases = append(res.Releases, infoOf(rel))
	}
	return res, nil
}

// install installs a release. Helm records the release (pending-install) only once the chart is
// rendered and its objects are built and checked for conflicts: a failure before that (chart,
// render, schema, post-render, conflicts, a name in use) leaves no record. A failure after it
// leaves the record Helm marked failed (no rollback-on-failure: the caller remediates).
func install(ctx context.Context, cfg *action.Configuration, p installParams) (any, error) {
	chrt, vals, pr, strategy, err := prepareDeploy(p.deployParams)
	if err != nil {
		return nil, err
	}
	timeout, err := opTimeout(p.TimeoutMs)
	if err != nil {
		return nil, err
	}
	in := action.NewInstall(cfg)
	in.ReleaseName = p.Name
	in.Namespace = p.Namespace
	in.Timeout = timeout
	in.WaitStrategy = waitStrategy(p.Wait, p.LegacyWait)
	in.TakeOwnership = p.TakeOwnership
	in.WaitOptions = []kube.WaitOption{kube.WithWaitContext(ctx)}
	in.WaitForJobs = p.WaitForJobs
	in.DisableHooks = p.DisableHooks
	in.DisableOpenAPIValidation = p.DisableOpenAPIValidation
	in.SkipSchemaValidation = p.DisableSchemaValidation
	in.Replace = p.Replace
	in.CreateNamespace = p.CreateNamespace
	in.ServerSideApply = p.ServerSideApply == nil || *p.ServerSideApply
	in.ForceConflicts = in.ServerSideApply && (p.Force || p.ForceConflicts)
	in.ForceReplace = p.Force && !in.ServerSideApply
	in.Description = p.Description
	in.PostRenderer = pr
	in.PostRenderStrategy = strategy
	switch p.CRDs {
	case "Skip":
		in.SkipCRDs = true
	case "", "Create":
		// Helm's own: with server-side apply each CRD is applied (one that exists is updated, or
		// fails the install on a conflict with another manager); without, created unless it exists.
	case "CreateReplace":
		// Helm's install only creates CRDs; ours replaces those that exist, then installs without.
		if err := applyChartCRDs(ctx, cfg, p.Chart, vals, true, "InstallFailed"); err != nil {
			return nil, err
		}
		in.SkipCRDs = true
	}
	rel, err := in.RunWithContext(ctx, chrt, vals)
	if err != nil {
		return nil, installFailure(rel, err)
	}
	return resultInfo(cfg, rel), nil
}

// installFailure classifies an error of Install.RunWithContext.
func installFailure(rel ri.Releaser, err error) error {
	var pre *postRenderError
	if errors.As(err, &pre) {
		return fail("PostRenderFailed", "%v", err)
	}
	// A render failure is returned with the unsaved release Helm marked failed; schema and
	// dependency (condition) failures come earlier, without a release.
	if r := v1Release(rel); r != nil && r.Info != nil && r.Info.Status == rcommon.StatusFailed &&
		strings.HasPrefix(r.Info.Description, "failed to render resource: ") {
		return fail("RenderFailed", "%v", err)
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "values don't meet the specifications of the schema") ||
		strings.HasPrefix(msg, "chart dependencies processing failed") {
		return fail("RenderFailed", "%s", msg)
	}
	return fail("InstallFailed", "%s", msg)
}

// upgrade upgrades a release, also one whose last record failed, and one installed with the helm
// CLI. Helm records the new release (pending-upgrade) only after rendering and building the
// objects: a render failure leaves no record; a later failure leaves it failed.
func upgrade(ctx context.Context, cfg *action.Configuration, p upgradeParams) (any, error) {
	chrt, vals, pr, strategy, err := prepareDeploy(p.deployParams)
	if err != nil {
		return nil, err
	}
	timeout, err := opTimeout(p.TimeoutMs)
	if err != nil {
		return nil, err
	}
	mode := string(p.ServerSideApply)
	if mode == "" {
		mode = "auto"
	}
	if mode != "auto" && mode != "true" && mode != "false" {
		return nil, fail("InvalidParams", `serverSideApply must be "true", "false" or "auto", not %q`, mode)
	}
	if p.MaxHistory < 0 {
		return nil, fail("InvalidParams", "maxHistory must not be negative")
	}
	rels, err := releases(cfg, p.Name)
	if err != nil {
		return nil, err
	}
	if len(rels) == 0 {
		return nil, fail("ReleaseNotFound", "release %q not found", p.Name)
	}
	last := rels[0]
	if p.Namespace != "" && last.Namespace != p.Namespace {
		return nil, fail("UpgradeFailed", "release %q is in namespace %q, not %q", p.Name, last.Namespace, p.Namespace)
	}
	// Helm's own refusals, checked here so that they are not taken for render failures below.
	status := last.Info.Status
	if status.IsPending() {
		return nil, fail("UpgradeFailed", "release %q is %s: another operation (install/upgrade/rollback) is in progress",
			p.Name, status)
	}
	if status != rcommon.StatusDeployed && status != rcommon.StatusFailed && status != rcommon.StatusSuperseded &&
		!slices.ContainsFunc(rels, func(r *release.Release) bool { return r.Info.Status == rcommon.StatusDeployed }) {
		return nil, fail("UpgradeFailed", "release %q has no deployed releases (its last is %s)", p.Name, status)
	}
	setNamespace(cfg, last.Namespace)

	switch p.CRDs {
	case "Skip":
	case "CreateReplace", "Create", "":
		// Helm's upgrade never applies crds/: create the missing ones, and replace the others
		// with CreateReplace.
		crdVals := vals
		if p.PreserveValues {
			crdVals = mergeValues(copyValues(vals), last.Config)
		}
		if err := applyChartCRDs(ctx, cfg, p.Chart, crdVals, p.CRDs == "CreateReplace", "UpgradeFailed"); err != nil {
			return nil, err
		}
	}
	if err := loadCapabilities(cfg); err != nil {
		return nil, fail("UpgradeFailed", "%v", err)
	}

	ssa := mode == "true" || (mode == "auto" && last.ApplyMethod == string(release.ApplyMethodServerSideApply))
	up := action.NewUpgrade(cfg)
	up.Namespace = last.Namespace
	up.Timeout = timeout
	up.WaitStrategy = waitStrategy(p.Wait, p.LegacyWait)
	up.TakeOwnership = p.TakeOwnership
	up.WaitOptions = []kube.WaitOption{kube.WithWaitContext(ctx)}
	up.WaitForJobs = p.WaitForJobs
	up.DisableHooks = p.DisableHooks
	up.DisableOpenAPIValidation = p.DisableOpenAPIValidation
	up.SkipSchemaValidation = p.DisableSchemaValidation
	up.ServerSideApply = mode
	up.ForceConflicts = ssa && (p.Force || p.ForceConflicts)
	up.ForceReplace = p.Force && !ssa
	up.MaxHistory = p.MaxHistory
	up.CleanupOnFail = p.CleanupOnFail
	// The values given are the release's values: without preserveValues, none means the chart's
	// defaults (Helm would otherwise reuse the last release's values when given none).
	up.ReuseValues = p.PreserveValues
	up.ResetValues = !p.PreserveValues
	up.Description = p.Description
	up.PostRenderer = pr
	up.PostRenderStrategy = strategy

	tracker := trackKube(cfg)
	rel, err := up.RunWithContext(ctx, p.Name, chrt, vals)
	if err != nil {
		return nil, upgradeFailure(err, tracker)
	}
	return resultInfo(cfg, rel), nil
}

// upgradeFailure classifies an error of Upgrade.RunWithContext. With the pending and
// no-deployed-release refusals and the capabilities out of the way, what fails before Helm
// first builds objects from a manifest (right after rendering) is the rendering: values
// (schema, reuse), dependency conditions, templates, post-rendering.
func upgradeFailure(err error, tracker *kubeTracker) error {
	var pre *postRenderError
	if errors.As(err, &pre) {
		return fail("PostRenderFailed", "%v", err)
	}
	msg := err.Error()
	// Helm reads the release records again before rendering (the Secret driver's messages).
	storageFailure := strings.Contains(msg, "query: failed to query") || strings.Contains(msg, "get: failed to get") ||
		strings.Contains(msg, "list: failed to list")
	if !tracker.built.Load() && !tracker.unreachable.Load() && !storageFailure {
		return fail("RenderFailed", "%s", msg)
	}
	return fail("UpgradeFailed", "%s", msg)
}

// prepareDeploy checks the params install and upgrade share and loads the chart.
func prepareDeploy(p deployParams) (
	*chart.Chart, map[string]any, postrenderer.PostRenderer, action.PostRenderStrategy, error,
) {
	if p.Chart == "" {
		return nil, nil, nil, "", fail("InvalidParams", "chart is required")
	}
	switch p.CRDs {
	case "", "Skip", "Create", "CreateReplace":
	default:
		return nil, nil, nil, "", fail("InvalidParams", "crds must be Skip, Create or CreateReplace, not %q", p.CRDs)
	}
	strategy, err := postRenderStrategy(p.PostRenderStrategy)
	if err != nil {
		return nil, nil, nil, "", err
	}
	pr, err := newPostRenderer(p.PostRender)
	if err != nil {
		return nil, nil, nil, "", err
	}
	chrt, err := loadInstallable(p.Chart)
	if err != nil {
		return nil, nil, nil, "", err
	}
	if p.ChartVersion != "" {
		chrt.Metadata.Version = p.ChartVersion
	}
	vals := p.Values
	if vals == nil {
		vals = map[string]any{}
	}
	return chrt, vals, pr, strategy, nil
}

// loadInstallable loads an application chart whose Chart.yaml dependencies are all in charts/.
func loadInstallable(path string) (*chart.Chart, error) {
	c, err := loadChart(path)
	if err != nil {
		return nil, fail("InvalidChart", "%v", err)
	}
	if t := c.Metadata.Type; t != "" && t != "application" {
		return nil, fail("InvalidChart", "chart %s is a %s chart, which cannot be installed", c.Name(), t)
	}
	if deps := c.Metadata.Dependencies; len(deps) > 0 {
		reqs := make([]ci.Dependency, len(deps))
		for i, d := range deps {
			reqs[i] = d
		}
		if err := action.CheckDependencies(c, reqs); err != nil {
			return nil, fail("InvalidChart", "chart %s: %v", c.Name(), err)
		}
	}
	return c, nil
}

// test runs the release's test hooks (those the filters select). Helm saves the release with the
// hooks' last runs, failed or not.
func test(ctx context.Context, cfg *action.Configuration, p testParams) (any, error) {
	for key := range p.Filters {
		if key != action.IncludeNameFilter && key != action.ExcludeNameFilter {
			return nil, fail("InvalidParams", `filters keys are "name" and "!name", not %q`, key)
		}
	}
	timeout, err := opTimeout(p.TimeoutMs)
	if err != nil {
		return nil, err
	}
	last, err := lastRelease(cfg, p.Name)
	if err != nil {
		return nil, err
	}
	setNamespace(cfg, last.Namespace)
	rt := action.NewReleaseTesting(cfg)
	rt.Namespace = last.Namespace
	rt.Timeout = timeout
	rt.WaitOptions = []kube.WaitOption{kube.WithWaitContext(ctx)}
	if p.Filters != nil {
		rt.Filters = p.Filters
	}
	reli, shutdown, runErr := rt.Run(p.Name)
	// The shutdown deletes the hooks' objects their delete policies name. After a failed test it
	// returns the test's error again.
	if shutdown != nil {
		if err := shutdown(); err != nil && runErr == nil {
			slog.Warn("deleting test hooks", "release", p.Name, "namespace", last.Namespace, "error", err)
		}
	}
	rel := v1Release(reli)
	if runErr != nil {
		var failed []string
		if rel != nil {
			for _, h := range rel.Hooks {
				if slices.Contains(h.Events, release.HookTest) && h.LastRun.Phase == release.HookPhaseFailed {
					failed = append(failed, h.Name)
				}
			}
		}
		if len(failed) > 0 {
			return nil, fail("TestFailed", "test hook %s failed: %v", strings.Join(failed, ", "), runErr)
		}
		return nil, fail("TestFailed", "%v", runErr)
	}
	if rel == nil {
		rel = last
	}
	return resultInfo(cfg, rel), nil
}

// rollback rolls the release back to version (0: the one before the last) and returns the
// newest release afterwards (the rollback's, failed or deployed).
func rollback(ctx context.Context, cfg *action.Configuration, p rollbackParams) (any, error) {
	if p.Version < 0 || p.MaxHistory < 0 {
		return nil, fail("InvalidParams", "version and maxHistory must not be negative")
	}
	timeout, err := opTimeout(p.TimeoutMs)
	if err != nil {
		return nil, err
	}
	last, err := lastRelease(cfg, p.Name)
	if err != nil {
		return nil, err
	}
	setNamespace(cfg, last.Namespace)
	version := p.Version
	if version == 0 {
		version = last.Version - 1
	}
	// The apply method is the target release's: force means force-conflicts with server-side
	// apply, replace without.
	targetReli, err := cfg.Releases.Get(p.Name, version)
	if err != nil {
		return nil, fail("RollbackFailed", "release %q has no version %d: %v", p.Name, version, err)
	}
	ssa := false
	if t := v1Release(targetReli); t != nil {
		ssa = t.ApplyMethod == string(release.ApplyMethodServerSideApply)
	}
	rb := action.NewRollback(cfg)
	rb.Version = version
	rb.Timeout = timeout
	rb.WaitStrategy = waitStrategy(p.Wait, p.LegacyWait)
	rb.WaitOptions = []kube.WaitOption{kube.WithWaitContext(ctx)}
	rb.WaitForJobs = p.WaitForJobs
	rb.DisableHooks = p.DisableHooks
	rb.ForceConflicts = ssa && (p.Force || p.ForceConflicts)
	rb.ForceReplace = p.Force && !ssa
	rb.CleanupOnFail = p.CleanupOnFail
	rb.MaxHistory = p.MaxHistory
	if err := rb.Run(p.Name); err != nil {
		return nil, fail("RollbackFailed", "%v", err)
	}
	newest, err := lastRelease(cfg, p.Name)
	if err != nil {
		return nil, err
	}
	return infoOf(newest), nil
}

// uninstall uninstalls the release; with keepHistory its record stays, marked uninstalled.
func uninstall(ctx context.Context, cfg *action.Configuration, p uninstallParams) (any, error) {
	switch p.DeletionPropagation {
	case "", "background", "foreground", "orphan":
	default:
		return nil, fail("InvalidParams", "deletionPropagation must be background, foreground or orphan, not %q",
			p.DeletionPropagation)
	}
	timeout, err := opTimeout(p.TimeoutMs)
	if err != nil {
		return nil, err
	}
	last, err := lastRelease(cfg, p.Name)
	if err != nil {
		return nil, err
	}
	setNamespace(cfg, last.Namespace)
	un := action.NewUninstall(cfg)
	un.DisableHooks = p.DisableHooks
	un.KeepHistory = p.KeepHistory
	un.Timeout = timeout
	un.WaitStrategy = waitStrategy(p.Wait, false)
	un.WaitOptions = []kube.WaitOption{kube.WithWaitContext(ctx)}
	un.DeletionPropagation = p.DeletionPropagation
	if un.DeletionPropagation == "" {
		un.DeletionPropagation = "background"
	}
	res, err := un.Run(p.Name)
	if err != nil {
		if errors.Is(err, driver.ErrReleaseNotFound) {
			return nil, fail("ReleaseNotFound", "release %q not found", p.Name)
		}
		return nil, fail("UninstallFailed", "%v", err)
	}
	out := uninstallResult{}
	if res != nil {
		out.Message = res.Info
		if rel := v1Release(res.Release); rel != nil && p.KeepHistory {
			info := resultInfo(cfg, rel)
			out.Info = &info
		}
	}
	return out, nil
}

// unlock marks the newest release failed if it is pending (an op that never finished: the
// helper or Helm stopped in the middle), so that it can be upgraded or rolled back again.
func unlock(cfg *action.Configuration, name string) (any, error) {
	last, err := lastRelease(cfg, name)
	if err != nil {
		return nil, err
	}
	if !last.Info.Status.IsPending() {
		return nil, fail("NotLocked", "release %q version %d is %s, not pending", name, last.Version, last.Info.Status)
	}
	last.SetStatus(rcommon.StatusFailed, unlockDescription)
	if err := cfg.Releases.Update(last); err != nil {
		return nil, fail("StorageFailed", "updating release %q version %d: %v", name, last.Version, err)
	}
	return resultInfo(cfg, last), nil
}

// manifest is the rendered manifest of the release's version (default: the newest).
func manifest(cfg *action.Configuration, name string, version int) (any, error) {
	var rel *release.Release
	if version > 0 {
		reli, err := cfg.Releases.Get(name, version)
		if errors.Is(err, driver.ErrReleaseNotFound) {
			return nil, fail("ReleaseNotFound", "release %q version %d not found", name, version)
		}
		if err != nil {
			return nil, fail("StorageFailed", "reading release %q version %d: %v", name, version, err)
		}
		rel = v1Release(reli)
	} else {
		last, err := lastRelease(cfg, name)
		if err != nil {
			return nil, err
		}
		rel = last
	}
	if rel == nil {
		return nil, fail("ReleaseNotFound", "release %q not found", name)
	}
	return manifestResult{Manifest: rel.Manifest, Namespace: rel.Namespace}, nil
}

// releases is the history of the release, newest first; empty when there is no such release.
func releases(cfg *action.Configuration, name string) ([]*release.Release, error) {
	hist, err := cfg.Releases.History(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fail("StorageFailed", "reading the history of release %q: %v", name, err)
	}
	rels := make([]*release.Release, 0, len(hist))
	for _, h := range hist {
		if r := v1Release(h); r != nil && r.Info != nil {
			rels = append(rels, r)
		}
	}
	slices.SortFunc(rels, func(a, b *release.Release) int { return b.Version - a.Version })
	return rels, nil
}

func lastRelease(cfg *action.Configuration, name string) (*release.Release, error) {
	rels, err := releases(cfg, name)
	if err != nil {
		return nil, err
	}
	if len(rels) == 0 {
		return nil, fail("ReleaseNotFound", "release %q not found", name)
	}
	return rels[0], nil
}

// resultInfo describes rel as stored (read back, so that its digest is the record's).
func resultInfo(cfg *action.Configuration, reli ri.Releaser) releaseInfo {
	rel := v1Release(reli)
	if rel == nil {
		return releaseInfo{Status: string(rcommon.StatusUnknown)}
	}
	if stored, err := cfg.Releases.Get(rel.Name, rel.Version); err == nil {
		if r := v1Release(stored); r != nil && r.Info != nil {
			rel = r
		}
	}
	return infoOf(rel)
}

func v1Release(r ri.Releaser) *release.Release {
	switch r := r.(type) {
	case *release.Release:
		return r
	case release.Release:
		return &r
	}
	return nil
}

func infoOf(rel *release.Release) releaseInfo {
	info := releaseInfo{
		Name:         rel.Name,
		Namespace:    rel.Namespace,
		Version:      rel.Version,
		Status:       string(rcommon.StatusUnknown),
		ConfigDigest: valuesDigest(rel.Config),
		Digest:       releaseDigest(rel),
	}
	if i := rel.Info; i != nil {
		info.Status = string(i.Status)
		info.FirstDeployed = timestamp(i.FirstDeployed)
		info.LastDeployed = timestamp(i.LastDeployed)
		info.Deleted = timestamp(i.Deleted)
		info.Description = i.Description
	}
	if rel.Chart != nil && rel.Chart.Metadata != nil {
		info.ChartName = rel.Chart.Metadata.Name
		info.ChartVersion = rel.Chart.Metadata.Version
		info.AppVersion = rel.Chart.Metadata.AppVersion
	}
	for k, v := range rel.Labels {
		if !slices.Contains(driver.GetSystemLabels(), k) {
			if info.Labels == nil {
				info.Labels = map[string]string{}
			}
			info.Labels[k] = v
		}
	}
	for _, h := range rel.Hooks {
		if !slices.Contains(h.Events, release.HookTest) {
			continue
		}
		info.HasTests = true
		if info.TestHooks == nil {
			info.TestHooks = map[string]testHookInfo{}
		}
		info.TestHooks[h.Name] = testHookInfo{
			LastStarted:   timestamp(h.LastRun.StartedAt),
			LastCompleted: timestamp(h.LastRun.CompletedAt),
			Phase:         string(h.LastRun.Phase),
		}
	}
	return info
}

// timestamp is t in RFC 3339 (UTC, seconds: what a metav1.Time holds), or "" when zero.
func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// valuesDigest is "sha256:<hex>" of the JSON encoding of values: keys sorted, no HTML escaping,
// no trailing newline; nil encodes as {}. The controller computes the same of the values it
// gives (sorted-key JSON.stringify) to tell whether the release has them.
func valuesDigest(values map[string]any) string {
	if values == nil {
		values = map[string]any{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(values); err != nil {
		return ""
	}
	sum := sha256.Sum256(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// releaseDigest identifies a release record: the sha256 of its JSON encoding.
func releaseDigest(rel *release.Release) string {
	data, err := json.Marshal(rel)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// copyValues deep-copies JSON-like values.
func copyValues(values map[string]any) map[string]any {
	out := make(map[string]any, len(values))
	for k, v := range values {
		out[k] = copyValue(v)
	}
	return out
}

func copyValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return copyValues(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = copyValue(e)
		}
		return out
	}
	return v
}

// mergeValues sets in dst what src has and dst has not, recursively in maps (as Helm merges the
// values of an upgrade that reuses the release's).
func mergeValues(dst, src map[string]any) map[string]any {
	for k, sv := range src {
		dv, ok := dst[k]
		if !ok {
			dst[k] = copyValue(sv)
			continue
		}
		dm, dok := dv.(map[string]any)
		sm, sok := sv.(map[string]any)
		if dok && sok {
			mergeValues(dm, sm)
		}
	}
	return dst
}

// loadCapabilities discovers the cluster's version and APIs for cfg as Helm does, unless cfg
// has them already (a test's fixed capabilities).
func loadCapabilities(cfg *action.Configuration) error {
	if cfg.Capabilities != nil || cfg.RESTClientGetter == nil {
		return nil
	}
	dc, err := cfg.RESTClientGetter.ToDiscoveryClient()
	if err != nil {
		return fmt.Errorf("could not get Kubernetes discovery client: %w", err)
	}
	dc.Invalidate()
	v, err := dc.ServerVersion()
	if err != nil {
		return fmt.Errorf("could not get server version from Kubernetes: %w", err)
	}
	apiVersions, err := action.GetVersionSet(dc)
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return fmt.Errorf("could not get apiVersions from Kubernetes: %w", err)
	}
	cfg.Capabilities = &common.Capabilities{
		APIVersions: apiVersions,
		KubeVersion: common.KubeVersion{Version: v.GitVersion, Major: v.Major, Minor: v.Minor},
		HelmVersion: common.DefaultCapabilities.HelmVersion,
	}
	return nil
}

// kubeTracker records what an action asked of the kube client.
type kubeTracker struct {
	kube.Interface
	built       atomic.Bool
	unreachable atomic.Bool
}

// trackKube puts a kubeTracker in front of cfg's kube client.
func trackKube(cfg *action.Configuration) *kubeTracker {
	inner := cfg.KubeClient
	if t, ok := inner.(*kubeTracker); ok {
		inner = t.Interface
	}
	t := &kubeTracker{Interface: inner}
	cfg.KubeClient = t
	return t
}

func (t *kubeTracker) Build(r io.Reader, validate bool) (kube.ResourceList, error) {
	t.built.Store(true)
	return t.Interface.Build(r, validate)
}

func (t *kubeTracker) IsReachable() error {
	err := t.Interface.IsReachable()
	if err != nil {
		t.unreachable.Store(true)
	}
	return err
}

func (t *kubeTracker) GetWaiterWithOptions(ws kube.WaitStrategy, opts ...kube.WaitOption) (kube.Waiter, error) {
	if c, ok := t.Interface.(kube.InterfaceWaitOptions); ok {
		return c.GetWaiterWithOptions(ws, opts...)
	}
	return t.Interface.GetWaiter(ws)
}
