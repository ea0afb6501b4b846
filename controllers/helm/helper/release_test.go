package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/resource"
	"sigs.k8s.io/yaml"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/kube"
	kubefake "helm.sh/helm/v4/pkg/kube/fake"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"helm.sh/helm/v4/pkg/storage"
	"helm.sh/helm/v4/pkg/storage/driver"
)

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func TestValuesDigest(t *testing.T) {
	for _, tc := range []struct {
		values map[string]any
		json   string
	}{
		{nil, `{}`},
		{map[string]any{}, `{}`},
		{
			map[string]any{"b": float64(1), "a": map[string]any{"x": "<&>"}, "c": []any{1.5, true, nil}},
			`{"a":{"x":"<&>"},"b":1,"c":[1.5,true,null]}`,
		},
		// Number formatting as ES6's JSON.stringify; non-ASCII text is not escaped.
		{
			map[string]any{"big": 1e21, "small": 1e-7, "micro": 0.000001, "int": float64(100), "s": "é\"\n"},
			`{"big":1e+21,"int":100,"micro":0.000001,"s":"é\"\n","small":1e-7}`,
		},
	} {
		if got, want := valuesDigest(tc.values), sha(tc.json); got != want {
			t.Errorf("valuesDigest(%v) = %s, want %s (of %s)", tc.values, got, want, tc.json)
		}
	}
}

const (
	appChart = `apiVersion: v2
name: app
version: 0.1.0
appVersion: "1.0"
`
	appConfigMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}
data:
  message: {{ .Values.message | quote }}
  replicas: {{ .Values.replicas | quote }}
`
	appTest = `apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-%s
  annotations:
    helm.sh/hook: test
spec:
  containers: [{name: test, image: busybox}]
`
	appSchema = `{"type": "object", "properties": {"replicas": {"type": "integer"}}}`
)

// appChartDir is a chart with a ConfigMap, two tests and a values schema, plus extra files.
func appChartDir(t *testing.T, extra map[string]string) string {
	t.Helper()
	files := map[string]string{
		"Chart.yaml":               appChart,
		"values.yaml":              "message: hello\nreplicas: 1\n",
		"values.schema.json":       appSchema,
		"templates/cm.yaml":        appConfigMap,
		"templates/tests/one.yaml": strings.ReplaceAll(appTest, "%s", "test-one"),
		"templates/tests/two.yaml": strings.ReplaceAll(appTest, "%s", "test-two"),
		"templates/NOTES.txt":      "installed {{ .Release.Name }}\n",
		"templates/_helpers.tpl":   `{{- define "app.name" -}}app{{- end -}}`,
		"templates/required.yaml":  `{{- if .Values.fail }}{{ required "fail needs a reason" .Values.reason }}{{- end }}`,
	}
	for k, v := range extra {
		files[k] = v
	}
	return write(t, files)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil)).Handler()

// fakeConfig is an action.Configuration on Helm's fakes: releases in memory, a kube client
// that prints (to nowhere) instead of applying, fixed capabilities.
func fakeConfig(t *testing.T) (*action.Configuration, *kubefake.FailingKubeClient) {
	t.Helper()
	kc := &kubefake.FailingKubeClient{PrintingKubeClient: kubefake.PrintingKubeClient{Out: io.Discard}}
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(quiet))
	mem := driver.NewMemory()
	mem.SetNamespace("apps")
	cfg.Releases = storage.Init(mem)
	cfg.KubeClient = kc
	cfg.Capabilities = common.DefaultCapabilities
	cfg.SetHookOutputFunc(func(_, _, _ string) io.Writer { return io.Discard })
	return cfg, kc
}

func installP(chart string, values map[string]any) installParams {
	return installParams{deployParams: deployParams{
		releaseRef: releaseRef{Name: "app"}, Chart: chart, Namespace: "apps", Values: values, TimeoutMs: 10_000,
	}}
}

func upgradeP(chart string, values map[string]any) upgradeParams {
	return upgradeParams{deployParams: deployParams{
		releaseRef: releaseRef{Name: "app"}, Chart: chart, Namespace: "apps", Values: values, TimeoutMs: 10_000,
	}}
}

// mustInfo(t)(op(...)) is the releaseInfo op returned, or fails the test.
func mustInfo(t *testing.T) func(any, error) releaseInfo {
	return func(res any, err error) releaseInfo {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		info, ok := res.(releaseInfo)
		if !ok {
			t.Fatalf("result is %T, not releaseInfo", res)
		}
		return info
	}
}

func historyOf(t *testing.T, cfg *action.Configuration) []releaseInfo {
	t.Helper()
	res, err := history(cfg, "app", -1)
	if err != nil {
		t.Fatal(err)
	}
	return res.(historyResult).Releases
}

func statuses(infos []releaseInfo) []string {
	var out []string
	for _, i := range infos {
		out = append(out, i.Status)
	}
	return out
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := errorCode(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
}

func errorCode(err error) string {
	var oe *opError
	if errors.As(err, &oe) {
		return oe.Code
	}
	return ""
}

func TestInstallUpgradeHistory(t *testing.T) {
	ctx := context.Background()
	cfg, _ := fakeConfig(t)
	dir := appChartDir(t, nil)

	if res, err := history(cfg, "app", 0); err != nil || len(res.(historyResult).Releases) != 0 {
		t.Fatalf("history of no release = %v, %v; want none", res, err)
	}

	values := map[string]any{"message": "hi <there>"}
	info := mustInfo(t)(install(ctx, cfg, installP(dir, values)))
	if info.Name != "app" || info.Namespace != "apps" || info.Version != 1 || info.Status != "deployed" ||
		info.ChartName != "app" || info.ChartVersion != "0.1.0" || info.AppVersion != "1.0" {
		t.Fatalf("install info = %+v", info)
	}
	if info.ConfigDigest != valuesDigest(values) || !strings.HasPrefix(info.Digest, "sha256:") {
		t.Fatalf("digests = %s, %s", info.ConfigDigest, info.Digest)
	}
	if !info.HasTests || len(info.TestHooks) != 2 || info.TestHooks["app-test-one"].LastStarted != "" {
		t.Fatalf("test hooks = %v %+v", info.HasTests, info.TestHooks)
	}
	if info.FirstDeployed == "" || info.FirstDeployed != info.LastDeployed || info.Deleted != "" {
		t.Fatalf("times = %q %q %q", info.FirstDeployed, info.LastDeployed, info.Deleted)
	}
	if h := historyOf(t, cfg); len(h) != 1 || h[0].Digest != info.Digest {
		t.Fatalf("history = %+v, want the installed release with digest %s", h, info.Digest)
	}

	// Upgrade without values: the chart's defaults, not the last release's values.
	up := mustInfo(t)(upgrade(ctx, cfg, upgradeP(dir, nil)))
	if up.Version != 2 || up.Status != "deployed" || up.ConfigDigest != valuesDigest(nil) {
		t.Fatalf("upgrade info = %+v", up)
	}
	// preserveValues merges the given values over the last release's.
	p := upgradeP(dir, map[string]any{"replicas": float64(3)})
	p.PreserveValues = true
	p.MaxHistory = 2
	up = mustInfo(t)(upgrade(ctx, cfg, p))
	if want := valuesDigest(map[string]any{"replicas": float64(3)}); up.Version != 3 || up.ConfigDigest != want {
		t.Fatalf("upgrade with preserveValues = %+v", up)
	}
	h := historyOf(t, cfg)
	if got := statuses(h); !reflect.DeepEqual(got, []string{"deployed", "superseded"}) || h[0].Version != 3 {
		t.Fatalf("history after maxHistory 2 = %v (%+v)", got, h)
	}
	if h[0].Digest != up.Digest {
		t.Fatalf("digest of the stored release %s != %s returned by upgrade", h[0].Digest, up.Digest)
	}
	if res, _ := history(cfg, "app", 1); len(res.(historyResult).Releases) != 1 {
		t.Fatalf("history max 1 = %+v", res)
	}

	// The values given are checked against the chart's schema: no record is written.
	_, err := upgrade(ctx, cfg, upgradeP(dir, map[string]any{"replicas": "three"}))
	wantCode(t, err, "RenderFailed")
	_, err = upgrade(ctx, cfg, upgradeP(dir, map[string]any{"fail": true}))
	wantCode(t, err, "RenderFailed")
	if !strings.Contains(err.Error(), "fail needs a reason") {
		t.Fatalf("render error %q does not name the required value", err)
	}
	if n := len(historyOf(t, cfg)); n != 2 {
		t.Fatalf("render failures wrote records: %d releases", n)
	}

	_, err = upgrade(ctx, cfg, upgradeParams{deployParams: deployParams{
		releaseRef: releaseRef{Name: "other"}, Chart: dir, Namespace: "apps",
	}})
	wantCode(t, err, "ReleaseNotFound")
	_, err = upgrade(ctx, cfg, upgradeP(filepath.Join(dir, "nope"), nil))
	wantCode(t, err, "InvalidChart")
	wrongNs := upgradeP(dir, nil)
	wrongNs.Namespace = "elsewhere"
	_, err = upgrade(ctx, cfg, wrongNs)
	wantCode(t, err, "UpgradeFailed")
}

func TestInstallFailures(t *testing.T) {
	ctx := context.Background()
	dir := appChartDir(t, nil)

	t.Run("render", func(t *testing.T) {
		cfg, _ := fakeConfig(t)
		_, err := install(ctx, cfg, installP(dir, map[string]any{"fail": true}))
		wantCode(t, err, "RenderFailed")
		if !strings.Contains(err.Error(), "fail needs a reason") {
			t.Fatalf("error %q does not name the required value", err)
		}
		// Helm returns render failures before it records the release.
		if h := historyOf(t, cfg); len(h) != 0 {
			t.Fatalf("a render failure left %+v", h)
		}
	})
	t.Run("schema", func(t *testing.T) {
		cfg, _ := fakeConfig(t)
		_, err := install(ctx, cfg, installP(dir, map[string]any{"replicas": "three"}))
		wantCode(t, err, "RenderFailed")
		if h := historyOf(t, cfg); len(h) != 0 {
			t.Fatalf("a schema failure left %+v", h)
		}
		p := installP(dir, map[string]any{"replicas": "three"})
		p.DisableSchemaValidation = true
		mustInfo(t)(install(ctx, cfg, p))
	})
	t.Run("chart", func(t *testing.T) {
		cfg, _ := fakeConfig(t)
		_, err := install(ctx, cfg, installP(filepath.Join(dir, "nope.tgz"), nil))
		wantCode(t, err, "InvalidChart")
		lib := write(t, map[string]string{"Chart.yaml": "apiVersion: v2\nname: lib\nversion: 1.0.0\ntype: library\n"})
		_, err = install(ctx, cfg, installP(lib, nil))
		wantCode(t, err, "InvalidChart")
	})
	t.Run("wait", func(t *testing.T) {
		cfg, kc := fakeConfig(t)
		kc.WaitError = errors.New("resources not ready")
		p := installP(dir, nil)
		p.Wait = true
		_, err := install(ctx, cfg, p)
		wantCode(t, err, "InstallFailed")
		if !strings.Contains(err.Error(), "resources not ready") {
			t.Fatalf("error %q is not Helm's", err)
		}
		h := historyOf(t, cfg)
		if len(h) != 1 || h[0].Status != "failed" {
			t.Fatalf("history after a failed install = %+v", h)
		}
		if got := kc.RecordedWaitStrategies; !slices.Contains(got, kube.StatusWatcherStrategy) {
			t.Fatalf("wait strategies = %v", got)
		}
		// The name is in use by a failed release: install again only with replace.
		kc.WaitError = nil
		_, err = install(ctx, cfg, p)
		wantCode(t, err, "InstallFailed")
		p.Replace = true
		info := mustInfo(t)(install(ctx, cfg, p))
		if info.Version != 2 || info.Status != "deployed" {
			t.Fatalf("install with replace = %+v", info)
		}
	})
	t.Run("upgrade a failed install", func(t *testing.T) {
		cfg, kc := fakeConfig(t)
		kc.WaitError = errors.New("quota exceeded")
		_, err := install(ctx, cfg, installP(dir, nil))
		wantCode(t, err, "InstallFailed")
		kc.WaitError = nil
		info := mustInfo(t)(upgrade(ctx, cfg, upgradeP(dir, nil)))
		if info.Version != 2 || info.Status != "deployed" {
			t.Fatalf("upgrade of a failed install = %+v", info)
		}
	})
	t.Run("params", func(t *testing.T) {
		cfg, _ := fakeConfig(t)
		p := installP(dir, nil)
		p.CRDs = "Always"
		_, err := install(ctx, cfg, p)
		wantCode(t, err, "InvalidParams")
		p = installP(dir, nil)
		p.PostRenderStrategy = "hooks"
		_, err = install(ctx, cfg, p)
		wantCode(t, err, "InvalidParams")
		_, err = releaseInstallOp(installParams{deployParams: deployParams{releaseRef: releaseRef{Name: "Bad_Name"}}})
		wantCode(t, err, "InvalidParams")
		_, err = releaseInstallOp(installP(dir, nil))
		wantCode(t, err, "InvalidParams") // no target
	})
}

func TestUpgradeFailures(t *testing.T) {
	ctx := context.Background()
	dir := appChartDir(t, nil)
	cfg, kc := fakeConfig(t)
	mustInfo(t)(install(ctx, cfg, installP(dir, nil)))

	kc.UpdateError = errors.New("field is immutable")
	_, err := upgrade(ctx, cfg, upgradeP(dir, nil))
	wantCode(t, err, "UpgradeFailed")
	if got := statuses(historyOf(t, cfg)); !reflect.DeepEqual(got, []string{"failed", "deployed"}) {
		t.Fatalf("history after a failed upgrade = %v", got)
	}
	// The newest release is failed: upgrading again is allowed.
	kc.UpdateError = nil
	info := mustInfo(t)(upgrade(ctx, cfg, upgradeP(dir, nil)))
	if info.Version != 3 || info.Status != "deployed" {
		t.Fatalf("upgrade after a failure = %+v", info)
	}

	// A pending release is refused, and unlock makes it failed.
	rel, err := cfg.Releases.Last("app")
	if err != nil {
		t.Fatal(err)
	}
	last := v1Release(rel)
	last.SetStatus(rcommon.StatusPendingUpgrade, "Preparing upgrade")
	if err := cfg.Releases.Update(last); err != nil {
		t.Fatal(err)
	}
	_, err = upgrade(ctx, cfg, upgradeP(dir, nil))
	wantCode(t, err, "UpgradeFailed")
	info = mustInfo(t)(unlock(cfg, "app"))
	if info.Status != "failed" || info.Description != unlockDescription || info.Version != 3 {
		t.Fatalf("unlocked = %+v", info)
	}
	_, err = unlock(cfg, "app")
	wantCode(t, err, "NotLocked")
	_, err = unlock(cfg, "other")
	wantCode(t, err, "ReleaseNotFound")
	mustInfo(t)(upgrade(ctx, cfg, upgradeP(dir, nil)))

	// serverSideApply and force: the apply method of the new release follows them.
	p := upgradeP(dir, nil)
	p.ServerSideApply = "false"
	p.Force = true
	mustInfo(t)(upgrade(ctx, cfg, p))
	if got := v1Release(must(cfg.Releases.Last("app"))).ApplyMethod; got != "csa" {
		t.Fatalf("apply method = %q, want csa", got)
	}
	p.ServerSideApply = "sometimes"
	_, err = upgrade(ctx, cfg, p)
	wantCode(t, err, "InvalidParams")
}

func writeKubeconfigFile(path, data string) error { return os.WriteFile(path, []byte(data), 0o600) }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestApplyModeParam(t *testing.T) {
	for in, want := range map[string]applyMode{`"auto"`: "auto", `true`: "true", `false`: "false"} {
		var m applyMode
		if err := m.UnmarshalJSON([]byte(in)); err != nil || m != want {
			t.Errorf("%s: %q, %v", in, m, err)
		}
	}
	var m applyMode
	if err := m.UnmarshalJSON([]byte(`1`)); err == nil {
		t.Errorf("1 was taken")
	}
}

func TestReleaseTest(t *testing.T) {
	ctx := context.Background()
	dir := appChartDir(t, nil)
	cfg, kc := fakeConfig(t)
	installed := mustInfo(t)(install(ctx, cfg, installP(dir, nil)))

	p := testParams{releaseRef: releaseRef{Name: "app"}, TimeoutMs: 10_000}
	p.Filters = map[string][]string{"name": {"app-test-one"}}
	info := mustInfo(t)(test(ctx, cfg, p))
	one, two := info.TestHooks["app-test-one"], info.TestHooks["app-test-two"]
	if one.Phase != "Succeeded" || one.LastStarted == "" || one.LastCompleted == "" || two.Phase != "" {
		t.Fatalf("test hooks after a filtered run = %+v", info.TestHooks)
	}
	if info.Version != 1 || info.Digest == installed.Digest || info.Status != "deployed" {
		t.Fatalf("tested release = %+v", info)
	}

	kc.WatchUntilReadyError = errors.New("pod failed")
	p.Filters = map[string][]string{"!name": {"app-test-one"}}
	_, err := test(ctx, cfg, p)
	wantCode(t, err, "TestFailed")
	if !strings.Contains(err.Error(), "app-test-two") || strings.Contains(err.Error(), "app-test-one") {
		t.Fatalf("error %q does not name the failed hook (only)", err)
	}
	// Helm saved the run.
	h := historyOf(t, cfg)
	if got := h[0].TestHooks["app-test-two"].Phase; got != "Failed" {
		t.Fatalf("stored phase of the failed test = %q (%+v)", got, h[0].TestHooks)
	}
	if got := h[0].TestHooks["app-test-one"].Phase; got != "Succeeded" {
		t.Fatalf("the skipped test lost its last run: %q", got)
	}

	p.Filters = map[string][]string{"kind": {"Pod"}}
	_, err = test(ctx, cfg, p)
	wantCode(t, err, "InvalidParams")
	_, err = test(ctx, cfg, testParams{releaseRef: releaseRef{Name: "other"}})
	wantCode(t, err, "ReleaseNotFound")
}

func TestRollbackUninstallManifest(t *testing.T) {
	ctx := context.Background()
	dir := appChartDir(t, nil)
	cfg, kc := fakeConfig(t)
	mustInfo(t)(install(ctx, cfg, installP(dir, map[string]any{"message": "one"})))
	mustInfo(t)(upgrade(ctx, cfg, upgradeP(dir, map[string]any{"message": "two"})))

	res, err := manifest(cfg, "app", 0)
	if err != nil || !strings.Contains(res.(manifestResult).Manifest, `message: "two"`) ||
		res.(manifestResult).Namespace != "apps" {
		t.Fatalf("manifest = %+v, %v", res, err)
	}
	res, err = manifest(cfg, "app", 1)
	if err != nil || !strings.Contains(res.(manifestResult).Manifest, `message: "one"`) {
		t.Fatalf("manifest of version 1 = %+v, %v", res, err)
	}
	if strings.Contains(res.(manifestResult).Manifest, "test-one") {
		t.Fatalf("the manifest holds the hooks")
	}
	_, err = manifest(cfg, "app", 9)
	wantCode(t, err, "ReleaseNotFound")
	_, err = manifest(cfg, "other", 0)
	wantCode(t, err, "ReleaseNotFound")

	rb := rollbackParams{releaseRef: releaseRef{Name: "app"}, TimeoutMs: 10_000, Force: true, MaxHistory: 10}
	info := mustInfo(t)(rollback(ctx, cfg, rb))
	if info.Version != 3 || info.Status != "deployed" || info.Description != "Rollback to 1" ||
		info.ConfigDigest != valuesDigest(map[string]any{"message": "one"}) {
		t.Fatalf("rollback = %+v", info)
	}
	if got := statuses(historyOf(t, cfg)); !reflect.DeepEqual(got, []string{"deployed", "superseded", "superseded"}) {
		t.Fatalf("history after rollback = %v", got)
	}
	rb.Version = 7
	_, err = rollback(ctx, cfg, rb)
	wantCode(t, err, "RollbackFailed")
	rb.Version = 2
	kc.UpdateError = errors.New("denied")
	_, err = rollback(ctx, cfg, rb)
	wantCode(t, err, "RollbackFailed")
	kc.UpdateError = nil
	if h := historyOf(t, cfg); h[0].Version != 4 || h[0].Status != "failed" {
		t.Fatalf("history after a failed rollback = %+v", h[0])
	}
	_, err = rollback(ctx, cfg, rollbackParams{releaseRef: releaseRef{Name: "other"}})
	wantCode(t, err, "ReleaseNotFound")

	un := uninstallParams{releaseRef: releaseRef{Name: "app"}, TimeoutMs: 10_000, KeepHistory: true,
		DeletionPropagation: "foreground"}
	out, err := uninstall(ctx, cfg, un)
	if err != nil {
		t.Fatal(err)
	}
	kept := out.(uninstallResult)
	if kept.Info == nil || kept.Info.Status != "uninstalled" || kept.Info.Deleted == "" || kept.Info.Version != 4 {
		t.Fatalf("uninstall with keepHistory = %+v", kept.Info)
	}
	if h := historyOf(t, cfg); len(h) != 4 || h[0].Status != "uninstalled" {
		t.Fatalf("history after uninstall = %v", statuses(h))
	}
	un.KeepHistory = false
	if out, err = uninstall(ctx, cfg, un); err != nil || out.(uninstallResult).Info != nil {
		t.Fatalf("purge = %+v, %v", out, err)
	}
	if h := historyOf(t, cfg); len(h) != 0 {
		t.Fatalf("history after purge = %v", statuses(h))
	}
	_, err = uninstall(ctx, cfg, un)
	wantCode(t, err, "ReleaseNotFound")
	un.DeletionPropagation = "now"
	_, err = uninstall(ctx, cfg, un)
	wantCode(t, err, "InvalidParams")
}

// crdClient is a fake kube client that builds one object per CRD document (nothing of other
// kinds), named after it, and records which CRDs it creates and replaces.
type crdClient struct {
	kubefake.PrintingKubeClient
	existing map[string]bool
	created  []string
	replaced []string
}

func (c *crdClient) Build(r io.Reader, _ bool) (kube.ResourceList, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var list kube.ResourceList
	for _, doc := range releaseutil.SplitManifests(string(data)) {
		var obj struct {
			Kind     string
			Metadata struct{ Name string }
		}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			return nil, err
		}
		if obj.Kind == "CustomResourceDefinition" {
			list = append(list, &resource.Info{Name: obj.Metadata.Name, Object: &unstructured.Unstructured{}})
		}
	}
	return list, nil
}

func (c *crdClient) Create(res kube.ResourceList, _ ...kube.ClientCreateOption) (*kube.Result, error) {
	for _, r := range res {
		if c.existing[r.Name] {
			gr := schema.GroupResource{Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions"}
			return nil, apierrors.NewAlreadyExists(gr, r.Name)
		}
		c.created = append(c.created, r.Name)
	}
	return &kube.Result{Created: res}, nil
}

func (c *crdClient) Update(_, target kube.ResourceList, _ ...kube.ClientUpdateOption) (*kube.Result, error) {
	for _, r := range target {
		c.replaced = append(c.replaced, r.Name)
	}
	return &kube.Result{Updated: target}, nil
}

func crd(name string) string {
	return "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: " + name + "\n"
}

func TestChartCRDs(t *testing.T) {
	ctx := context.Background()
	dir := appChartDir(t, map[string]string{
		"Chart.yaml": appChart + "dependencies:\n" +
			"- {name: sub, version: 1.0.0, condition: sub.enabled}\n- {name: other, version: 1.0.0}\n",
		"crds/crds.yaml":                  crd("a.example.com") + "---\n" + crd("b.example.com"),
		"charts/sub/Chart.yaml":           "apiVersion: v2\nname: sub\nversion: 1.0.0\n",
		"charts/sub/crds/sub.yaml":        crd("sub.example.com"),
		"charts/other/Chart.yaml":         "apiVersion: v2\nname: other\nversion: 1.0.0\n",
		"charts/other/crds/other.yaml":    crd("other.example.com"),
		"charts/other/templates/cm.yaml":  "",
		"charts/sub/templates/empty.yaml": "",
	})
	newConfig := func() (*action.Configuration, *crdClient) {
		cfg, _ := fakeConfig(t)
		kc := &crdClient{PrintingKubeClient: kubefake.PrintingKubeClient{Out: io.Discard},
			existing: map[string]bool{"b.example.com": true}}
		cfg.KubeClient = kc
		return cfg, kc
	}

	cfg, kc := newConfig()
	vals := map[string]any{"sub": map[string]any{"enabled": false}}
	if err := applyChartCRDs(ctx, cfg, dir, vals, true, "InstallFailed"); err != nil {
		t.Fatal(err)
	}
	slices.Sort(kc.created)
	if want := []string{"a.example.com", "other.example.com"}; !reflect.DeepEqual(kc.created, want) {
		t.Fatalf("created %v, want %v (not the CRDs of the disabled subchart)", kc.created, want)
	}
	if want := []string{"b.example.com"}; !reflect.DeepEqual(kc.replaced, want) {
		t.Fatalf("replaced %v, want %v", kc.replaced, want)
	}

	// Create: missing CRDs only.
	cfg, kc = newConfig()
	if err := applyChartCRDs(ctx, cfg, dir, nil, false, "UpgradeFailed"); err != nil {
		t.Fatal(err)
	}
	if len(kc.created) != 3 || len(kc.replaced) != 0 {
		t.Fatalf("created %v, replaced %v", kc.created, kc.replaced)
	}

	// An install with CreateReplace writes the CRDs itself, then installs without them.
	cfg, kc = newConfig()
	p := installP(dir, vals)
	p.CRDs = "CreateReplace"
	mustInfo(t)(install(ctx, cfg, p))
	if len(kc.created) != 2 || len(kc.replaced) != 1 {
		t.Fatalf("install with CreateReplace: created %v, replaced %v", kc.created, kc.replaced)
	}
	// Skip: none at all; an upgrade with Create creates the missing ones.
	cfg, kc = newConfig()
	p.CRDs = "Skip"
	mustInfo(t)(install(ctx, cfg, p))
	if len(kc.created) != 0 {
		t.Fatalf("install with Skip created %v", kc.created)
	}
	u := upgradeP(dir, vals)
	u.CRDs = "Create"
	mustInfo(t)(upgrade(ctx, cfg, u))
	if len(kc.created) != 2 || len(kc.replaced) != 0 {
		t.Fatalf("upgrade with Create: created %v, replaced %v", kc.created, kc.replaced)
	}
}

func TestClientCache(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	writeKubeconfig := func(server string) {
		t.Helper()
		data := "apiVersion: v1\nkind: Config\ncurrent-context: c\n" +
			"clusters: [{name: k, cluster: {server: " + server + "}}]\n" +
			"users: [{name: u, user: {token: secret}}]\n" +
			"contexts: [{name: c, context: {cluster: k, user: u}}, {name: d, context: {cluster: k, user: u}}]\n"
		if err := writeKubeconfigFile(kubeconfig, data); err != nil {
			t.Fatal(err)
		}
	}
	writeKubeconfig("https://one.example.com")
	cache := newClientCache(2)
	tgt := target{Kubeconfig: kubeconfig, StorageNamespace: "apps", Impersonate: "system:serviceaccount:apps:sa"}
	a, err := cache.get(tgt)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := cache.get(tgt); b != a {
		t.Fatalf("the same target got new clients")
	}
	if a.getter.config.Host != "https://one.example.com" || a.getter.config.Impersonate.UserName != tgt.Impersonate ||
		a.getter.config.QPS != clientQPS {
		t.Fatalf("rest config = %+v", a.getter.config)
	}
	other := tgt
	other.Context = "d"
	if c, _ := cache.get(other); c == a {
		t.Fatalf("another context got the same clients")
	}
	// A rewritten kubeconfig is another entry, and replaces the old one.
	writeKubeconfig("https://two.example.com/")
	c, err := cache.get(tgt)
	if err != nil || c == a || c.getter.config.Host != "https://two.example.com/" {
		t.Fatalf("clients after the kubeconfig changed: %v", err)
	}
	if cache.order.Len() != 2 {
		t.Fatalf("cache holds %d entries, want 2", cache.order.Len())
	}
	third := tgt
	third.StorageNamespace = "other"
	if _, err := cache.get(third); err != nil || cache.order.Len() != 2 {
		t.Fatalf("cache bound: %d entries, %v", cache.order.Len(), err)
	}

	_, err = cache.get(target{Kubeconfig: filepath.Join(dir, "missing"), StorageNamespace: "apps"})
	wantCode(t, err, "InvalidParams")
	cfg, err := configFor(target{Kubeconfig: kubeconfig, StorageNamespace: "apps", Persistent: new(false)}, "web")
	if err != nil {
		t.Fatal(err)
	}
	if ns := cfg.KubeClient.(*kube.Client).Namespace; ns != "web" {
		t.Fatalf("kube client namespace %q", ns)
	}
}
