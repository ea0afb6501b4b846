#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, kwok), kustomize, and sops + age-keygen (from the separate module in sops/, whose
# cloud SDKs must not move the Kubernetes dependencies) from the Go modules pinned here. Binaries are cached
# outside the work tree, keyed by a hash of go.mod + go.sum, and rebuilt only when missing.
# Prints the bin directory on stdout.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache_root="${TIDE_CACHE:-$HOME/.cache/tide}"
key="$(cat "$here/go.mod" "$here/go.sum" "$here/sops/go.mod" "$here/sops/go.sum" | sha256sum | cut -c1-16)"
bin="$cache_root/controlplane/$key/bin"
tools=(
  "etcd=go.etcd.io/etcd/server/v3"
  "kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver"
  "kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager"
  "kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler"
  "kubectl=k8s.io/kubernetes/cmd/kubectl"
  "kwok=sigs.k8s.io/kwok/cmd/kwok"
  "kustomize=sigs.k8s.io/kustomize/kustomize/v5"
  "sops=github.com/getsops/sops/v3/cmd/sops@sops"
  "age-keygen=filippo.io/age/cmd/age-keygen@sops"
)
if ! command -v go >/dev/null; then
  echo "error: Go is not installed; install Go >= 1.26 to build the local control plane" >&2
  exit 1
fi
mkdir -p "$bin"
cd "$here"
for t in "${tools[@]}"; do
  name="${t%%=*}"; pkg="${t#*=}"; dir="$here"
  # name=package@subdir: built in the module of that subdirectory.
  if [[ "$pkg" == *@* ]]; then dir="$here/${pkg#*@}"; pkg="${pkg%@*}"; fi
  [[ -x "$bin/$name" ]] && continue
  echo "building $name ($pkg) into $bin" >&2
  if ! (cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$bin/$name.tmp" "$pkg") >&2; then
    rm -f "$bin/$name.tmp"
    echo "error: building $name failed (go build $pkg in e2e/controlplane); see the Go error above" >&2
    exit 1
  fi
  mv "$bin/$name.tmp" "$bin/$name"
done
# kwok moves nodes and pods through Stages; use the ones the pinned kwok module ships.
stages="$bin/kwok-stages.yaml"
if [[ ! -s "$stages" ]]; then
  kwok_dir="$(go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    cat "$kwok_dir/kustomize/stage/$f"
    echo '---'
  done > "$stages.tmp"
  mv "$stages.tmp" "$stages"
fi
echo "$bin"
