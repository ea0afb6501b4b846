package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"
)

// helmStyleIndex is laid out the way `helm repo index` writes an index, with the irregularities
// a hand-edited or third-party index may have.
const helmStyleIndex = `apiVersion: v1
# a comment before the entries
entries:
  # a comment between charts
  zeta:
  - apiVersion: v2
    appVersion: 1.0.0
    created: "2024-01-02T03:04:05.123456789Z"
    description: |
      A chart whose description spans
      several lines.

      zeta: not a key
    digest: 1111111111111111111111111111111111111111111111111111111111111111
    name: zeta
    urls:
    - https://example.com/zeta-1.0.0.tgz
    version: 1.0.0
  - apiVersion: v2
    created: "2024-03-02T03:04:05Z"
    description: >-
      folded
      text
    digest: 2222
    name: zeta
    urls:
    - https://example.com/zeta-1.10.0.tgz
    - oci://mirror.example.com/zeta
    version: 1.10.0
  - apiVersion: v2
    name: zeta
    version: not-a-version
  "alpha-quoted":
    - apiVersion: v1
      created: 2023-05-06T07:08:09Z
      digest: "3333"
      name: alpha-quoted
      urls: ["https://example.com/alpha-quoted-0.1.0.tgz"]
      version: 0.1.0
    # a comment inside a chart

    - apiVersion: v1
      name: alpha-quoted
      version: 0.2.0-rc.1
      description: |+
        kept trailing lines


  'beta':
  - {apiVersion: v2, name: beta, version: 2.0.0, digest: "4444", urls: [https://example.com/beta.tgz]}
  empty:
  - name: empty
    version: not.valid.semver.at.all
  nothing: []
  mid:
  - name: mid
    version: 3.1.4
    annotations:
      category: Database
    maintainers:
    - name: someone
      email: someone@example.com
generated: "2024-06-01T00:00:00Z"
serverInfo:
  contextPath: /api/charts
publicKeys:
- abc
`

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// wholeFile converts with the SDK's loader on the whole file (the reference).
func wholeFile(t testing.TB, path string) (any, string, error) {
	t.Helper()
	out := path + ".whole.ndjson"
	result, err := convertIndex(path, out)
	if err != nil {
		return nil, "", err
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return result, string(b), nil
}

func parsed(t testing.TB, path string) (any, string, error) {
	t.Helper()
	out := path + ".parsed.ndjson"
	result, err := parseIndex(indexParams{Path: path, Out: out})
	if err != nil {
		return nil, "", err
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return result, string(b), nil
}

func assertSame(t *testing.T, path string, wantChunked bool) string {
	t.Helper()
	if _, ok := convertIndexChunked(path, path+".chunked.ndjson"); ok != wantChunked {
		t.Fatalf("chunked conversion taken = %v, want %v", ok, wantChunked)
	}
	wantResult, want, err := wholeFile(t, path)
	if err != nil {
		t.Fatalf("whole-file load: %v", err)
	}
	gotResult, got, err := parsed(t, path)
	if err != nil {
		t.Fatalf("index.parse: %v", err)
	}
	if got != want {
		t.Fatalf("output differs from the whole-file load:\ngot:\n%s\nwant:\n%s", got, want)
	}
	if fmt.Sprint(gotResult) != fmt.Sprint(wantResult) {
		t.Fatalf("result %v, want %v", gotResult, wantResult)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*"))
	if len(leftovers) > 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
	return got
}

func TestIndexChunkedMatchesWholeFile(t *testing.T) {
	dir := t.TempDir()
	got := assertSame(t, writeFile(t, dir, "index.yaml", helmStyleIndex), true)
	lines := strings.Split(strings.TrimSpace(got), "\n")
	var names []string
	for _, l := range lines {
		names = append(names, strings.SplitN(strings.TrimPrefix(l, `{"name":"`), `"`, 2)[0])
	}
	if strings.Join(names, ",") != "alpha-quoted,beta,mid,zeta" {
		t.Fatalf("charts %v\n%s", names, got)
	}
	if !strings.Contains(lines[3], `"version":"1.10.0"`) || strings.Contains(got, "not-a-version") {
		t.Fatalf("zeta: %s", lines[3])
	}

	t.Run("sorted, CRLF", func(t *testing.T) {
		dir := t.TempDir()
		content := strings.ReplaceAll(generatedIndex(5, 4), "\n", "\r\n")
		assertSame(t, writeFile(t, dir, "index.yaml", content), true)
	})
	t.Run("no entries", func(t *testing.T) {
		dir := t.TempDir()
		assertSame(t, writeFile(t, dir, "index.yaml", "apiVersion: v1\nentries:\ngenerated: \"2024-06-01T00:00:00Z\"\n"), true)
	})
}

func TestIndexFallback(t *testing.T) {
	cases := map[string]string{
		"flow entries": `apiVersion: v1
entries: {a: [{name: a, version: 1.0.0}], b: [{name: b, version: 2.0.0}]}
`,
		"anchors across charts": `apiVersion: v1
entries:
  a:
  - &base
    name: a
    version: 1.0.0
    urls: [https://example.com/a.tgz]
  b:
  - <<: *base
    name: b
    version: 2.0.0
`,
		"alias to a header anchor": `apiVersion: v1
annotations: &ann
  k: v
entries:
  a:
  - name: a
    version: 1.0.0
    annotations: *ann
`,
		"JSON": `{"apiVersion":"v1","entries":{"a":[{"name":"a","version":"1.0.0"}]}}`,
		"document marker": `---
apiVersion: v1
entries:
  a:
  - name: a
    version: 1.0.0
`,
		"multi-line quoted scalar at the chart level": `apiVersion: v1
entries:
  a:
  - name: a
    version: 1.0.0
    description: "one
  b: two"
`,
		"tab indentation": "apiVersion: v1\nentries:\n  a:\n  - name: a\n\t version: 1.0.0\n",
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "index.yaml", content)
			if _, _, err := wholeFile(t, path); err != nil {
				// The SDK refuses it: so must index.parse, with the same message.
				_, _, got := parsed(t, path)
				if got == nil || got.Error() != err.Error() {
					t.Fatalf("error %v, want %v", got, err)
				}
				return
			}
			assertSame(t, path, false)
		})
	}
}

func TestIndexInvalid(t *testing.T) {
	cases := map[string]struct{ content, message string }{
		"missing apiVersion": {"entries:\n  a:\n  - name: a\n    version: 1.0.0\n", "no API version specified"},
		"empty apiVersion":   {"apiVersion: \"\"\nentries:\n  a:\n  - name: a\n    version: 1.0.0\n", "no API version specified"},
		"duplicate chart": {"apiVersion: v1\nentries:\n  a:\n  - name: a\n    version: 1.0.0\n  b: []\n  a:\n  - name: a\n    version: 2.0.0\n",
			"already"},
		"unknown field":       {"apiVersion: v1\nentries:\n  a:\n  - name: a\n    version: 1.0.0\n    bogus: 1\n", "bogus"},
		"unknown top field":   {"apiVersion: v1\nbogus: 1\nentries:\n  a:\n  - name: a\n    version: 1.0.0\n", "bogus"},
		"duplicate top-level": {"apiVersion: v1\nentries:\n  a: []\napiVersion: v2\n", "already"},
		"empty":               {"", "empty"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "index.yaml", c.content)
			_, _, err := parsed(t, path)
			var oe *opError
			if !errors.As(err, &oe) || oe.Code != "InvalidIndex" || !strings.Contains(oe.Message, c.message) {
				t.Fatalf("error %#v, want InvalidIndex containing %q", err, c.message)
			}
			if _, _, want := wholeFile(t, path); want == nil || want.Error() != err.Error() {
				t.Fatalf("error %v, whole-file load gives %v", err, want)
			}
		})
	}
}

// generatedIndex writes an index like `helm repo index` does: charts sorted by name, each with
// versions oldest to newest. 1500 charts × 60 versions make about 51 MB.
func generatedIndex(charts, versions int) string {
	var b strings.Builder
	writeGeneratedIndex(&b, charts, versions)
	return b.String()
}

func writeGeneratedIndex(w interface{ WriteString(string) (int, error) }, charts, versions int) {
	w.WriteString("apiVersion: v1\nentries:\n")
	created := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for c := range charts {
		name := fmt.Sprintf("chart-%05d", c)
		fmt.Fprintf(writerFunc(w.WriteString), "  %s:\n", name)
		for v := range versions {
			version := fmt.Sprintf("%d.%d.%d", v/20, v%20, c%7)
			fmt.Fprintf(writerFunc(w.WriteString), `  - annotations:
      category: Infrastructure
    apiVersion: v2
    appVersion: %[2]s
    created: "%[3]s"
    description: %[1]s is a generated chart used to measure how much memory parsing a large repository index takes.
    digest: %064[4]x
    home: https://example.com/charts/%[1]s
    keywords:
    - generated
    - %[1]s
    maintainers:
    - name: Tide
      url: https://example.com
    name: %[1]s
    urls:
    - https://example.com/charts/%[1]s-%[2]s.tgz
    version: %[2]s
`, name, version, created.Add(time.Duration(c*versions+v)*time.Minute).Format(time.RFC3339Nano), c*versions+v)
		}
	}
	w.WriteString("generated: \"2024-06-01T00:00:00Z\"\nserverInfo: {}\n")
}

type writerFunc func(string) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(string(p)) }

func TestIndexLargeMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and parses a 50 MB index")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "index.yaml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	writeGeneratedIndex(w, 1500, 60)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	st, _ := os.Stat(path)

	runtime.GC()
	debug.FreeOSMemory()
	var (
		mu               sync.Mutex
		maxInuse, maxSys uint64
		stop             = make(chan struct{})
		done             = make(chan struct{})
	)
	sample := func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		mu.Lock()
		maxInuse, maxSys = max(maxInuse, m.HeapInuse), max(maxSys, m.HeapSys)
		mu.Unlock()
	}
	go func() {
		defer close(done)
		for {
			sample()
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	start := time.Now()
	result, err := parseIndex(indexParams{Path: path, Out: path + ".ndjson"})
	elapsed := time.Since(start)
	close(stop)
	<-done
	sample()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d MB index: %v in %v; peak heap in use %d MB, heap from the OS %d MB",
		st.Size()>>20, result, elapsed.Round(time.Millisecond), maxInuse>>20, maxSys>>20)
	if fmt.Sprint(result) != "map[charts:1500 versions:90000]" {
		t.Fatalf("result %v", result)
	}
	if maxInuse > 300<<20 || maxSys > 300<<20 {
		t.Fatalf("peak heap in use %d MB, from the OS %d MB: want below 300 MB", maxInuse>>20, maxSys>>20)
	}
	out, _ := os.ReadFile(path + ".ndjson")
	if first, _, _ := bytes.Cut(out, []byte("\n")); !bytes.HasPrefix(first, []byte(`{"name":"chart-00000","versions":[{"version":"2.19.0"`)) {
		t.Fatalf("first line %.200s", first)
	}
	if os.Getenv("TIDE_KEEP_INDEX") != "" {
		os.Rename(path, os.Getenv("TIDE_KEEP_INDEX"))
	}
}
