// tide-helm executes Helm SDK operations for tide-controller, which decides everything else.
// Protocol: newline-delimited JSON on stdin/stdout. A request {"id", "op", "params"} is answered
// by {"id", "result"} or {"id", "error": {"code", "message"}}. Requests are served concurrently;
// logs go to stderr only; the helper exits once stdin is closed and the requests in flight are
// answered.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
)

type request struct {
	ID     json.RawMessage `json:"id"`
	Op     string          `json:"op"`
	Params json.RawMessage `json:"params"`
}

type response struct {
	ID     json.RawMessage `json:"id"`
	Result any             `json:"result,omitempty"`
	Error  *opError        `json:"error,omitempty"`
}

// opError is an error with a code the client can act on.
type opError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *opError) Error() string { return e.Message }

func fail(code, format string, args ...any) *opError {
	return &opError{Code: code, Message: fmt.Sprintf(format, args...)}
}

type handler func(params json.RawMessage) (any, error)

var ops = map[string]handler{
	"ping":          ping,
	"index.parse":   withParams(parseIndex),
	"chart.inspect": withParams(inspectChart),
	"chart.package": withParams(packageChart),

	"release.history":   withParams(releaseHistoryOp),
	"release.install":   withParams(releaseInstallOp),
	"release.upgrade":   withParams(releaseUpgradeOp),
	"release.test":      withParams(releaseTestOp),
	"release.rollback":  withParams(releaseRollbackOp),
	"release.uninstall": withParams(releaseUninstallOp),
	"release.unlock":    withParams(releaseUnlockOp),
	"release.manifest":  withParams(releaseManifestOp),
}

// withParams decodes the request's params into P for the handler.
func withParams[P any](fn func(P) (any, error)) handler {
	return func(raw json.RawMessage) (any, error) {
		var p P
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &p); err != nil {
				return nil, fail("InvalidParams", "invalid params: %v", err)
			}
		}
		return fn(p)
	}
}

func ping(json.RawMessage) (any, error) {
	return map[string]string{"version": helmVersion()}, nil
}

// helmVersion is the version of the Helm SDK module compiled in.
func helmVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "helm.sh/helm/v4" {
				return dep.Version
			}
		}
	}
	return "unknown"
}

// serve answers one request, turning a panic into that request's error.
func serve(req request) (resp response) {
	resp.ID = req.ID
	defer func() {
		if r := recover(); r != nil {
			slog.Error("panic serving request", "op", req.Op, "panic", r, "stack", string(debug.Stack()))
			resp.Result, resp.Error = nil, fail("Internal", "%s panicked: %v", req.Op, r)
		}
	}()
	h, ok := ops[req.Op]
	if !ok {
		resp.Error = fail("UnknownOp", "unknown op %q", req.Op)
		return resp
	}
	result, err := h(req.Params)
	if err != nil {
		var oe *opError
		if !errors.As(err, &oe) {
			oe = fail("Internal", "%s: %v", req.Op, err)
		}
		resp.Error = oe
		return resp
	}
	resp.Result = result
	return resp
}

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	log.SetOutput(os.Stderr)

	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	write := func(resp response) {
		line, err := json.Marshal(resp)
		if err != nil {
			line, _ = json.Marshal(response{ID: resp.ID, Error: fail("Internal", "encoding result: %v", err)})
		}
		mu.Lock()
		defer mu.Unlock()
		out.Write(append(line, '\n'))
		if err := out.Flush(); err != nil {
			slog.Error("writing stdout", "error", err)
			os.Exit(1)
		}
	}

	in := bufio.NewReader(os.Stdin)
	var inflight sync.WaitGroup
	for {
		line, err := in.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var req request
			if jerr := json.Unmarshal(line, &req); jerr != nil {
				slog.Error("ignoring a line that is not a request", "error", jerr)
			} else {
				inflight.Go(func() { write(serve(req)) })
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			slog.Error("reading stdin", "error", err)
			break
		}
	}
	inflight.Wait()
}
