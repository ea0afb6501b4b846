package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
)

func write(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func code(err error) string {
	var oe *opError
	if errors.As(err, &oe) {
		return oe.Code
	}
	return ""
}

func TestMergeValuesFiles(t *testing.T) {
	dir := write(t, map[string]string{
		"a.yaml":    "image: {repo: nginx, tag: '1.0'}\nreplicas: 1\nlist: [1, 2]\n",
		"b.yaml":    "image: {tag: '2.0'}\nlist: [3]\nextra: true\n",
		"list.yaml": "- a\n- b\n",
	})
	got, err := mergeValuesFiles([]string{filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"image":    map[string]any{"repo": "nginx", "tag": "2.0"},
		"replicas": float64(1),
		"list":     []any{float64(3)},
		"extra":    true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("merged values = %#v, want %#v", got, want)
	}
	_, err = mergeValuesFiles([]string{filepath.Join(dir, "list.yaml")})
	if code(err) != "InvalidValues" {
		t.Fatalf("a list file: got %v, want InvalidValues", err)
	}
}

const parent = `apiVersion: v2
name: app
version: 0.1.0
dependencies:
- {name: lib, version: 1.x, repository: file://../lib}
- {name: redis, version: 2.0.0, repository: https://charts.example.com, alias: cache}
- {name: redis, version: 2.0.0, repository: https://charts.example.com, alias: queue}
`

func TestAttachDependencies(t *testing.T) {
	root := write(t, map[string]string{
		"app/Chart.yaml":              parent,
		"app/values.yaml":             "{}\n",
		"app/charts/extra/Chart.yaml": "apiVersion: v2\nname: extra\nversion: 3.0.0\n",
		"lib/Chart.yaml":              "apiVersion: v2\nname: lib\nversion: 1.2.0\n",
		"redis/Chart.yaml":            "apiVersion: v2\nname: redis\nversion: 2.0.0\n",
	})
	app := filepath.Join(root, "app")
	redis := filepath.Join(root, "redis")

	c, err := loader.Load(app)
	if err != nil {
		t.Fatal(err)
	}
	if err := attachDependencies(c, app, "", map[string]string{"cache": redis}); code(err) != "MissingDependency" {
		t.Fatalf("without queue: got %v, want MissingDependency", err)
	}
	given := map[string]string{"cache": redis, "queue": redis}
	if err := attachDependencies(c, app, app, given); code(err) != "MissingDependency" {
		t.Fatalf("file://../lib outside the root: got %v, want MissingDependency", err)
	}
	if err := attachDependencies(c, app, root, given); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range c.Dependencies() {
		names = append(names, d.Name()+"-"+d.Metadata.Version)
	}
	if want := []string{"lib-1.2.0", "redis-2.0.0", "extra-3.0.0"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("dependencies = %v, want %v", names, want)
	}
}
