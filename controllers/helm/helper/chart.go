package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
)

// loadChart loads a packaged chart (.tgz) or a chart directory; only apiVersion v1 and v2 charts
// (Helm 4's stable chart format) are accepted.
func loadChart(path string) (*chart.Chart, error) {
	c, err := loader.Load(path)
	if err != nil {
		return nil, fmt.Errorf("loading chart %s: %w", path, err)
	}
	if v := c.Metadata.APIVersion; v != chart.APIVersionV1 && v != chart.APIVersionV2 {
		return nil, fmt.Errorf("chart %s has apiVersion %q; only v1 and v2 are supported", path, v)
	}
	return c, nil
}

type inspectParams struct {
	Path string `json:"path"`
}

type dependency struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	Repository string `json:"repository"`
	Alias      string `json:"alias"`
	Condition  string `json:"condition"`
}

type lockedDependency struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	Repository string `json:"repository"`
}

type inspectResult struct {
	Name         string             `json:"name"`
	Version      string             `json:"version"`
	APIVersion   string             `json:"apiVersion"`
	Type         string             `json:"type"`
	Dependencies []dependency       `json:"dependencies"`
	Lock         []lockedDependency `json:"lock"`
}

func inspectChart(p inspectParams) (any, error) {
	c, err := loadChart(p.Path)
	if err != nil {
		return nil, fail("InvalidChart", "%v", err)
	}
	md := c.Metadata
	res := inspectResult{
		Name: md.Name, Version: md.Version, APIVersion: md.APIVersion, Type: md.Type,
		Dependencies: []dependency{},
	}
	for _, d := range md.Dependencies {
		res.Dependencies = append(res.Dependencies, dependency{d.Name, d.Version, d.Repository, d.Alias, d.Condition})
	}
	if c.Lock != nil {
		res.Lock = []lockedDependency{}
		for _, d := range c.Lock.Dependencies {
			res.Lock = append(res.Lock, lockedDependency{d.Name, d.Version, d.Repository})
		}
	}
	return res, nil
}

type packageParams struct {
	Path         string            `json:"path"`
	Out          string            `json:"out"`
	Version      string            `json:"version"`
	ValuesFiles  []string          `json:"valuesFiles"`
	Dependencies map[string]string `json:"dependencies"`
	// Root, when set, is the directory file:// dependencies must stay in (the source artifact).
	Root string `json:"root"`
}

type packageResult struct {
	Path    string `json:"path"`
	Name    string `json:"name"`
	Version string `json:"version"`
}

func packageChart(p packageParams) (any, error) {
	if p.Path == "" || p.Out == "" {
		return nil, fail("InvalidParams", "chart.package needs path and out")
	}
	c, err := loadChart(p.Path)
	if err != nil {
		return nil, fail("InvalidChart", "%v", err)
	}
	if p.Dependencies != nil {
		if err := attachDependencies(c, p.Path, p.Root, p.Dependencies); err != nil {
			return nil, err
		}
	}
	if len(p.ValuesFiles) > 0 {
		values, err := mergeValuesFiles(p.ValuesFiles)
		if err != nil {
			return nil, err
		}
		if err := setValues(c, values); err != nil {
			return nil, fail("PackageFailed", "encoding merged values: %v", err)
		}
	}
	if p.Version != "" {
		c.Metadata.Version = p.Version
	}
	path, err := save(c, p.Out)
	if err != nil {
		return nil, fail("PackageFailed", "packaging %s: %v", c.Name(), err)
	}
	return packageResult{Path: path, Name: c.Name(), Version: c.Metadata.Version}, nil
}

// attachDependencies makes the chart's subcharts what `helm dependency build` would put in charts/:
// each dependency of Chart.yaml, keyed by alias or name, is loaded from given[key] or, for a
// file:// repository, from that path relative to the chart directory (which must be inside root,
// when root is set). Subcharts already vendored in charts/ are kept unless a dependency of the
// same chart name is loaded in their place.
func attachDependencies(c *chart.Chart, chartPath, root string, given map[string]string) error {
	var loaded []*chart.Chart
	for _, d := range c.Metadata.Dependencies {
		key := d.Alias
		if key == "" {
			key = d.Name
		}
		path, ok := given[key]
		if !ok {
			local, isLocal := strings.CutPrefix(d.Repository, "file://")
			switch {
			case !isLocal:
				return fail("MissingDependency", "dependency %q (%s from %q) was not given", key, d.Name, d.Repository)
			case !isDir(chartPath):
				return fail("MissingDependency", "dependency %q (%s) of packaged chart %s must be given",
					key, d.Repository, chartPath)
			}
			path = filepath.Join(chartPath, local)
			if root != "" && !within(root, path) {
				return fail("MissingDependency", "dependency %q (%s) is outside of %s", key, d.Repository, root)
			}
		}
		dep, err := loadChart(path)
		if err != nil {
			return fail("MissingDependency", "dependency %q: %v", key, err)
		}
		if dep.Name() != d.Name {
			return fail("MissingDependency", "dependency %q: %s holds chart %q, not %q", key, path, dep.Name(), d.Name)
		}
		loaded = appendUnique(loaded, dep)
	}
	for _, vendored := range c.Dependencies() {
		if !containsName(loaded, vendored.Name()) {
			loaded = append(loaded, vendored)
		}
	}
	c.SetDependencies(loaded...)
	return nil
}

// appendUnique adds dep unless the same chart and version is there already (two aliases of one
// chart need a single copy: Helm finds the subchart of each alias by name and version).
func appendUnique(deps []*chart.Chart, dep *chart.Chart) []*chart.Chart {
	for _, d := range deps {
		if d.Name() == dep.Name() && d.Metadata.Version == dep.Metadata.Version {
			return deps
		}
	}
	return append(deps, dep)
}

func containsName(deps []*chart.Chart, name string) bool {
	for _, d := range deps {
		if d.Name() == name {
			return true
		}
	}
	return false
}

// within reports whether path, with symbolic links resolved, is root or below it.
func within(root, path string) bool {
	root, err1 := filepath.EvalSymlinks(root)
	path, err2 := filepath.EvalSymlinks(path)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// mergeValuesFiles deep-merges YAML maps in order, later files winning, as `helm -f a -f b` does.
func mergeValuesFiles(files []string) (map[string]any, error) {
	merged := map[string]any{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fail("InvalidValues", "reading values file %s: %v", f, err)
		}
		values, err := loader.LoadValues(bytes.NewReader(data))
		if err != nil {
			return nil, fail("InvalidValues", "values file %s is not a YAML map: %v", f, err)
		}
		merged = loader.MergeMaps(merged, values)
	}
	return merged, nil
}

// setValues makes values the chart's values.yaml, both parsed and as the raw file Save writes.
func setValues(c *chart.Chart, values map[string]any) error {
	data, err := yaml.Marshal(values)
	if err != nil {
		return err
	}
	c.Values = values
	for _, f := range c.Raw {
		if f.Name == chartutil.ValuesfileName {
			f.Data = data
			return nil
		}
	}
	c.Raw = append(c.Raw, &common.File{Name: chartutil.ValuesfileName, ModTime: c.ModTime, Data: data})
	return nil
}

// save writes <out>/<name>-<version>.tgz with the SDK's saver, through a temporary directory so
// that the archive appears complete or not at all.
func save(c *chart.Chart, out string) (string, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(out, ".package-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	written, err := chartutil.Save(c, tmp)
	if err != nil {
		return "", err
	}
	path := filepath.Join(out, filepath.Base(written))
	return path, os.Rename(written, path)
}
