package main

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/kio"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

const (
	webDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels:
    app.kubernetes.io/name: web
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels:
      app.kubernetes.io/name: web
  template:
    metadata:
      labels:
        app.kubernetes.io/name: web
    spec:
      containers:
        - name: web
          image: "nginx:{{ .Values.tag }}"
        - name: sidecar
          image: busybox:1.36
`
	webService = `apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
spec:
  selector:
    app.kubernetes.io/name: web
  ports:
    - port: 80
`
	webHook = `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: "nginx:{{ .Values.tag }}"
`
)

func webChartDir(t *testing.T) string {
	t.Helper()
	return write(t, map[string]string{
		"Chart.yaml":                "apiVersion: v2\nname: web\nversion: 1.0.0\n",
		"values.yaml":               "replicas: 1\ntag: \"1.25\"\n",
		"templates/deployment.yaml": webDeployment,
		"templates/service.yaml":    webService,
		"templates/migrate.yaml":    webHook,
	})
}

func webPostRender() *postRenderSpec {
	return &postRenderSpec{
		Kustomize: []kustomizeSpec{
			{
				Patches: []patchSpec{
					{Patch: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n"},
					{
						Patch:  "- op: replace\n  path: /spec/type\n  value: NodePort\n",
						Target: &patchTarget{Version: "v1", Kind: "Service", Name: "web"},
					},
				},
				Images: []imageSpec{{Name: "nginx", NewName: "registry.example.com/nginx", NewTag: "1.27"}},
			},
			// A second pass sees what the first one did.
			{Patches: []patchSpec{{
				Patch:  `[{"op": "add", "path": "/metadata/annotations/second", "value": "pass"}]`,
				Target: &patchTarget{Group: "apps", Kind: "Deployment", LabelSelector: "app.kubernetes.io/name=web"},
			}}},
		},
		CommonLabels:      map[string]string{"team": "blue", "app.kubernetes.io/name": "renamed"},
		CommonAnnotations: map[string]string{"owner": "tide"},
	}
}

// objects parses a manifest into objects by kind.
func objects(t *testing.T, manifest string) map[string]*kyaml.RNode {
	t.Helper()
	nodes, err := kio.ParseAll(manifest)
	if err != nil {
		t.Fatalf("parsing %s: %v", manifest, err)
	}
	out := map[string]*kyaml.RNode{}
	for _, n := range nodes {
		out[n.GetKind()] = n
	}
	return out
}

func field(t *testing.T, n *kyaml.RNode, path ...string) string {
	t.Helper()
	v, err := n.Pipe(kyaml.Lookup(path...))
	if err != nil || v == nil {
		t.Fatalf("%s: no %v (%v)", n.GetKind(), path, err)
	}
	return strings.TrimSpace(v.MustString())
}

func TestPostRendererInstall(t *testing.T) {
	ctx := context.Background()
	cfg, _ := fakeConfig(t)
	p := installP(webChartDir(t), nil)
	p.Name = "web"
	p.PostRender = webPostRender()
	p.PostRenderStrategy = "nohooks"
	info := mustInfo(t)(install(ctx, cfg, p))

	res, err := manifest(cfg, "web", info.Version)
	if err != nil {
		t.Fatal(err)
	}
	m := res.(manifestResult).Manifest
	if !strings.Contains(m, "# Source: web/templates/deployment.yaml") ||
		!strings.Contains(m, "# Source: web/templates/service.yaml") {
		t.Fatalf("the objects lost their template names:\n%s", m)
	}
	if strings.Contains(m, "postrender-filename") {
		t.Fatalf("the file name annotation is left:\n%s", m)
	}
	objs := objects(t, m)
	dep, svc := objs["Deployment"], objs["Service"]
	if dep == nil || svc == nil {
		t.Fatalf("manifest:\n%s", m)
	}
	for path, want := range map[string]string{
		"spec.replicas": "3",
		"spec.template.spec.containers.[name=web].image":           "registry.example.com/nginx:1.27",
		"spec.template.spec.containers.[name=sidecar].image":       "busybox:1.36",
		"metadata.annotations.second":                              "pass",
		"metadata.annotations.owner":                               "tide",
		"metadata.labels.team":                                     "blue",
		"metadata.labels.app\\.kubernetes\\.io/name":               "renamed",
		"spec.selector.matchLabels.app\\.kubernetes\\.io/name":     "web",
		"spec.template.metadata.labels.app\\.kubernetes\\.io/name": "web",
	} {
		if got := field(t, dep, splitPath(path)...); got != want {
			t.Errorf("Deployment %s = %q, want %q", path, got, want)
		}
	}
	if got := field(t, svc, "spec", "type"); got != "NodePort" {
		t.Errorf("Service spec.type = %q", got)
	}
	if got := field(t, svc, "metadata", "labels", "team"); got != "blue" {
		t.Errorf("Service label team = %q", got)
	}
	if got := field(t, svc, "spec", "selector", "app.kubernetes.io/name"); got != "web" {
		t.Errorf("Service selector = %q", got)
	}

	// nohooks: the hook is as the chart rendered it.
	rel := v1Release(must(cfg.Releases.Last("web")))
	if len(rel.Hooks) != 1 || !strings.Contains(rel.Hooks[0].Manifest, `image: "nginx:1.25"`) ||
		strings.Contains(rel.Hooks[0].Manifest, "team") {
		t.Fatalf("hooks = %+v", rel.Hooks)
	}
	// combined (the default): the hook is post-rendered too.
	up := upgradeP(webChartDir(t), nil)
	up.Name = "web"
	up.PostRender = webPostRender()
	mustInfo(t)(upgrade(ctx, cfg, up))
	rel = v1Release(must(cfg.Releases.Last("web")))
	if len(rel.Hooks) != 1 || !strings.Contains(rel.Hooks[0].Manifest, "registry.example.com/nginx:1.27") ||
		!strings.Contains(rel.Hooks[0].Manifest, "team: blue") {
		t.Fatalf("hooks = %+v", rel.Hooks[0].Manifest)
	}
}

// splitPath splits a dotted path, keeping escaped dots and [name=x] selectors.
func splitPath(path string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(path); i++ {
		switch {
		case path[i] == '\\' && i+1 < len(path):
			cur.WriteByte(path[i+1])
			i++
		case path[i] == '.':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(path[i])
		}
	}
	return append(out, cur.String())
}

func TestPostRenderFailures(t *testing.T) {
	ctx := context.Background()
	cfg, _ := fakeConfig(t)
	p := installP(webChartDir(t), nil)
	p.Name = "web"
	p.PostRender = &postRenderSpec{Kustomize: []kustomizeSpec{{Patches: []patchSpec{
		{Patch: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: missing\nspec:\n  replicas: 3\n"},
	}}}}
	_, err := install(ctx, cfg, p)
	wantCode(t, err, "PostRenderFailed")
	if !strings.Contains(err.Error(), "missing") {
		t.Fatalf("error %q is not kustomize's", err)
	}
	if res, _ := history(cfg, "web", 0); len(res.(historyResult).Releases) != 0 {
		t.Fatalf("a post-render failure left a release")
	}

	// A patch that applies to nothing it targets is no error; one that cannot apply is.
	p.PostRender = &postRenderSpec{Kustomize: []kustomizeSpec{{Patches: []patchSpec{{
		Patch: "- op: replace\n  path: /spec/nothing/here\n  value: 1\n", Target: &patchTarget{Kind: "Service"},
	}}}}}
	_, err = install(ctx, cfg, p)
	wantCode(t, err, "PostRenderFailed")

	for _, spec := range []*postRenderSpec{
		{Kustomize: []kustomizeSpec{{Patches: []patchSpec{{Patch: " "}}}}},
		{Kustomize: []kustomizeSpec{{Images: []imageSpec{{NewTag: "1"}}}}},
	} {
		_, err := newPostRenderer(spec)
		wantCode(t, err, "InvalidParams")
	}
	if pr, err := newPostRenderer(&postRenderSpec{Kustomize: []kustomizeSpec{{}}}); pr != nil || err != nil {
		t.Fatalf("an empty spec made %v, %v", pr, err)
	}
}

func TestPostRendererEmpty(t *testing.T) {
	pr, err := newPostRenderer(&postRenderSpec{CommonLabels: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := pr.Run(bytes.NewBufferString("\n"))
	if err != nil || strings.TrimSpace(out.String()) != "" {
		t.Fatalf("empty manifests gave %q, %v", out, err)
	}
}

func TestCommonMetadataQuoting(t *testing.T) {
	in := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: {keep: me, n: old}\n"
	out, err := setCommonMetadata([]byte(in), map[string]string{"n": "123", "b": "true", "s": "plain"},
		map[string]string{"note": "a: b"})
	if err != nil {
		t.Fatal(err)
	}
	node := objects(t, string(out))["ConfigMap"]
	want := map[string]string{"keep": "me", "n": "123", "b": "true", "s": "plain"}
	if got := node.GetLabels(); !reflect.DeepEqual(got, want) {
		t.Fatalf("labels = %v, want %v\n%s", got, want, out)
	}
	if got := node.GetAnnotations()["note"]; got != "a: b" {
		t.Fatalf("annotation = %q\n%s", got, out)
	}
	for _, s := range []string{`n: "123"`, `b: "true"`, "s: plain"} {
		if !strings.Contains(string(out), s) {
			t.Errorf("output lacks %s:\n%s", s, out)
		}
	}
}
