package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"time"

	repo "helm.sh/helm/v4/pkg/repo/v1"
)

type indexParams struct {
	Path string `json:"path"`
	Out  string `json:"out"`
}

type indexChart struct {
	Name     string         `json:"name"`
	Versions []indexVersion `json:"versions"`
}

type indexVersion struct {
	Version    string   `json:"version"`
	Digest     string   `json:"digest"`
	URLs       []string `json:"urls"`
	Created    string   `json:"created"`
	APIVersion string   `json:"apiVersion"`
}

// parseIndex loads a repository index with the SDK (which validates it, drops invalid versions
// with a warning on stderr and sorts each chart's versions newest first) and writes it to
// p.Out as NDJSON: one line per chart, in name order. Charts left without versions are omitted.
func parseIndex(p indexParams) (any, error) {
	if p.Path == "" || p.Out == "" {
		return nil, fail("InvalidParams", "index.parse needs path and out")
	}
	// A large index takes several times its size in memory while it is parsed: give it back.
	result, err := convertIndex(p.Path, p.Out)
	debug.FreeOSMemory()
	return result, err
}

func convertIndex(path, out string) (any, error) {
	index, err := repo.LoadIndexFile(path)
	if err != nil {
		return nil, fail("InvalidIndex", "%v", err)
	}
	index.SortEntries()
	names := make([]string, 0, len(index.Entries))
	for name, versions := range index.Entries {
		if len(versions) > 0 {
			names = append(names, name)
		}
	}
	slices.Sort(names)

	versions := 0
	err = writeAtomically(out, func(w *bufio.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for _, name := range names {
			chart := indexChart{Name: name, Versions: make([]indexVersion, 0, len(index.Entries[name]))}
			for _, v := range index.Entries[name] {
				created := ""
				if !v.Created.IsZero() {
					created = v.Created.Format(time.RFC3339Nano)
				}
				chart.Versions = append(chart.Versions, indexVersion{
					Version: v.Version, Digest: v.Digest, URLs: v.URLs, Created: created, APIVersion: v.APIVersion,
				})
			}
			versions += len(chart.Versions)
			if err := enc.Encode(chart); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fail("WriteFailed", "writing %s: %v", out, err)
	}
	return map[string]int{"charts": len(names), "versions": versions}, nil
}

// writeAtomically writes a file through a temporary file in the same directory and a rename.
func writeAtomically(path string, write func(*bufio.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	w := bufio.NewWriterSize(tmp, 1<<16)
	if err = write(w); err != nil {
		return err
	}
	if err = w.Flush(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
