#!/usr/bin/env bash
# Builds Flux's helm-controller from its Go module (the go.mod here requires the release and
# mirrors its replace directives) for the side-by-side run of `make bench-helm`. Kept out of
# e2e/controlplane/build.sh so that `make test` never builds it. Cached like the control plane's
# tools, outside the work tree under a hash of go.mod, go.sum and the Go files here; prints the
# binary's path on stdout.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache_root="${TIDE_CACHE:-$HOME/.cache/tide}"
key="$({ cat "$here"/go.mod "$here"/go.sum "$here"/*.go; } | sha256sum | cut -c1-16)"
store="$cache_root/go-tools/$key"
name=helm-controller
if [[ ! -x "$store/$name" ]]; then
  if ! command -v go >/dev/null; then
    echo "error: Go is not installed; install Go >= 1.26 to build Flux's helm-controller" >&2
    exit 1
  fi
  echo "building $name (github.com/fluxcd/helm-controller in $here) into $store" >&2
  mkdir -p "$store"
  if ! (cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$store/$name.tmp" \
    github.com/fluxcd/helm-controller) >&2; then
    rm -f "$store/$name.tmp"
    echo "error: building $name failed (see the Go error above)" >&2
    exit 1
  fi
  mv "$store/$name.tmp" "$store/$name"
fi
echo "$store/$name"
