package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
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
	result, ok := convertIndexChunked(p.Path, p.Out)
	var err error
	if !ok {
		result, err = convertIndex(p.Path, p.Out)
	}
	// The whole-file fallback takes several times the file's size: give the memory back.
	debug.FreeOSMemory()
	return result, err
}

// convertIndex loads the whole index with the SDK at once. Its YAML decoder converts the whole
// document, which takes many times the file's size in memory: it is the fallback for files the
// chunked conversion does not handle.
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
			versions += len(index.Entries[name])
			if err := enc.Encode(toIndexChart(name, index.Entries[name])); err != nil {
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

func toIndexChart(name string, versions repo.ChartVersions) indexChart {
	chart := indexChart{Name: name, Versions: make([]indexVersion, 0, len(versions))}
	for _, v := range versions {
		created := ""
		if !v.Created.IsZero() {
			created = v.Created.Format(time.RFC3339Nano)
		}
		chart.Versions = append(chart.Versions, indexVersion{
			Version: v.Version, Digest: v.Digest, URLs: v.URLs, Created: created, APIVersion: v.APIVersion,
		})
	}
	return chart
}

// errNotChunkable tells that the file's layout is not the one the chunked conversion expects.
var errNotChunkable = errors.New("index layout not handled by the chunked conversion")

// convertIndexChunked converts a block-style YAML index one chart at a time, so that memory is
// bounded by the largest chart's entries instead of the whole file. The file is split at the text
// level: the lines outside the top-level `entries:` block form a header document, and each key of
// that block, with the more indented lines after it, a chunk. Each chunk is loaded by the SDK's
// own loader (repo.LoadIndexFile) as a document `apiVersion: v1\nentries:\n<chunk>`, so
// validation, defaults and the dropping of invalid versions are the SDK's; the header document
// is loaded by it too (apiVersion, strict fields). It reports false, having written nothing, when
// the layout is unexpected or any part fails to load: the caller then loads the whole file with
// the SDK, which gives the SDK's result or error for any file.
func convertIndexChunked(path, out string) (any, bool) {
	dir := filepath.Dir(out)
	scratch, err := os.CreateTemp(dir, ".index-chunk.*.yaml")
	if err != nil {
		return nil, false
	}
	scratch.Close()
	defer os.Remove(scratch.Name())
	stage, err := os.CreateTemp(dir, "."+filepath.Base(out)+".*.tmp")
	if err != nil {
		return nil, false
	}
	committed := false
	defer func() {
		if !committed {
			stage.Close()
			os.Remove(stage.Name())
		}
	}()

	type span struct {
		name     string
		off, len int64
	}
	var (
		spans    []span
		seen     = map[string]bool{}
		sorted   = true
		versions int
		offset   int64
	)
	w := bufio.NewWriterSize(stage, 1<<16)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	var line bytes.Buffer
	lineEnc := json.NewEncoder(&line)
	lineEnc.SetEscapeHTML(false)

	loadChunk := func(chunk []byte) error {
		doc := append([]byte("apiVersion: v1\nentries:\n"), chunk...)
		if err := os.WriteFile(scratch.Name(), doc, 0o600); err != nil {
			return err
		}
		index, err := repo.LoadIndexFile(scratch.Name())
		if err != nil {
			return err
		}
		if len(index.Entries) != 1 {
			return errNotChunkable
		}
		for name, cvs := range index.Entries {
			if seen[name] {
				return errNotChunkable // duplicate key: the SDK's strict decoder refuses the file
			}
			seen[name] = true
			if len(cvs) == 0 {
				continue
			}
			line.Reset()
			if err := lineEnc.Encode(toIndexChart(name, cvs)); err != nil {
				return err
			}
			if n := len(spans); n > 0 && spans[n-1].name > name {
				sorted = false
			}
			spans = append(spans, span{name, offset, int64(line.Len())})
			offset += int64(line.Len())
			versions += len(cvs)
			if _, err := w.Write(line.Bytes()); err != nil {
				return err
			}
		}
		return nil
	}

	header, err := splitIndex(path, loadChunk)
	if err != nil {
		return nil, false
	}
	// The header: apiVersion (the SDK's error if missing), generated, serverInfo... strictly.
	if json.Valid(header) {
		return nil, false
	}
	if err := os.WriteFile(scratch.Name(), header, 0o600); err != nil {
		return nil, false
	}
	if index, err := repo.LoadIndexFile(scratch.Name()); err != nil || index.Entries != nil {
		return nil, false
	}
	if err := w.Flush(); err != nil {
		return nil, false
	}
	result := map[string]int{"charts": len(spans), "versions": versions}
	if sorted {
		if stage.Chmod(0o644) != nil || stage.Close() != nil || os.Rename(stage.Name(), out) != nil {
			return nil, false
		}
		committed = true
		return result, true
	}
	slices.SortFunc(spans, func(a, b span) int { return strings.Compare(a.name, b.name) })
	err = writeAtomically(out, func(w *bufio.Writer) error {
		for _, s := range spans {
			if _, err := io.Copy(w, io.NewSectionReader(stage, s.off, s.len)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, false
	}
	return result, true
}

// splitIndex reads a YAML index line by line, hands each chart's chunk of the top-level
// `entries:` block to chunk, and returns the other lines (the header document). It returns
// errNotChunkable when the layout is not plain block style.
func splitIndex(path string, chunk func([]byte) error) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<16), 64<<20)

	var (
		header     []byte
		current    []byte // the current chart's chunk
		inEntries  bool
		sawEntries bool
		indent     = -1 // the indentation of the chart keys, once known
		first      = true
	)
	flush := func() error {
		if len(current) == 0 {
			return nil
		}
		err := chunk(current)
		current = current[:0]
		return err
	}
	for sc.Scan() {
		raw := sc.Bytes()
		if first {
			first = false
			if bytes.HasPrefix(raw, []byte("\xef\xbb\xbf")) {
				return nil, errNotChunkable
			}
		}
		text := bytes.TrimRight(raw, " \r")
		trimmed := bytes.TrimLeft(text, " ")
		n := len(text) - len(trimmed)
		if len(trimmed) > 0 && trimmed[0] == '\t' {
			return nil, errNotChunkable
		}
		blankOrComment := len(trimmed) == 0 || trimmed[0] == '#'
		if n == 0 && !blankOrComment && !inEntries && isSeqItem(trimmed) {
			// A compact sequence item of a top-level key (publicKeys).
		} else if n == 0 && !blankOrComment {
			// A top-level line: a key of the index document.
			if !isKeyStart(trimmed[0]) {
				return nil, errNotChunkable
			}
			if inEntries {
				if err := flush(); err != nil {
					return nil, err
				}
				inEntries = false
			}
			if isEntriesKey(trimmed) {
				if sawEntries {
					return nil, errNotChunkable
				}
				sawEntries, inEntries = true, true
				continue
			}
			if bytes.HasPrefix(trimmed, []byte("entries")) || bytes.HasPrefix(trimmed, []byte("\"entries")) ||
				bytes.HasPrefix(trimmed, []byte("'entries")) {
				return nil, errNotChunkable
			}
		}
		if !inEntries {
			header = append(append(header, raw...), '\n')
			continue
		}
		if !blankOrComment {
			if indent < 0 {
				indent = n
			}
			switch {
			case n < indent:
				return nil, errNotChunkable
			case n == indent:
				if isSeqItem(trimmed) {
					if len(current) == 0 {
						return nil, errNotChunkable
					}
					break // a compact sequence item of the current chart
				}
				if trimmed[0] == '?' || trimmed[0] == '-' {
					return nil, errNotChunkable
				}
				if err := flush(); err != nil {
					return nil, err
				}
			}
		}
		if len(current) == 0 && blankOrComment {
			continue // between charts: nothing the chunk needs
		}
		current = append(append(current, raw...), '\n')
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if !sawEntries {
		return nil, errNotChunkable
	}
	return header, nil
}

// isSeqItem tells whether a line (without its indentation) starts a block sequence item.
func isSeqItem(line []byte) bool {
	return len(line) > 0 && line[0] == '-' && (len(line) == 1 || line[1] == ' ')
}

// isKeyStart tells whether a top-level line may start a plain or quoted mapping key.
func isKeyStart(c byte) bool {
	return c == '_' || c == '"' || c == '\'' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
		c >= '0' && c <= '9'
}

// isEntriesKey tells whether a top-level line is `entries:` with nothing but a comment after it.
func isEntriesKey(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, []byte("entries:"))
	if !ok {
		return false
	}
	rest = bytes.TrimLeft(rest, " ")
	return len(rest) == 0 || rest[0] == '#' && len(rest) < len(line)-len("entries:")
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
