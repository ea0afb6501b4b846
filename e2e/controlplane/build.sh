#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, kwok) and kustomize from the module here; sops + age-keygen from the module in sops/
# (whose cloud SDKs must not move the Kubernetes dependencies); the Helm 4 CLI and the CNCF
# distribution registry from the module in oci/; and Tide's Helm helper (controllers/helm/helper).
# Each binary is cached outside the work tree under a hash of its module's go.mod, go.sum and Go
# files, and rebuilt only when that hash changes. The binaries are linked into one directory,
# keyed by all the hashes, whose path is printed on stdout.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache_root="${TIDE_CACHE:-$HOME/.cache/tide}"
# name=package[@module directory relative to here]
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
  "helm=helm.sh/helm/v4/cmd/helm@oci"
  "registry=github.com/distribution/distribution/v3/cmd/registry@oci"
  "tide-helm=.@../../controllers/helm/helper"
)
module_key() { { cat "$1"/go.mod "$1"/go.sum; cat "$1"/*.go 2>/dev/null || true; } | sha256sum | cut -c1-16; }
keys=""
for t in "${tools[@]}"; do
  pkg="${t#*=}"; dir="$here"; [[ "$pkg" == *@* ]] && dir="$here/${pkg#*@}"
  keys+="$(module_key "$dir")"
done
bin="$cache_root/controlplane/$(echo "$keys" | sha256sum | cut -c1-16)/bin"
if ! command -v go >/dev/null; then
  echo "error: Go is not installed; install Go >= 1.26 to build the local control plane" >&2
  exit 1
fi
mkdir -p "$bin"
cd "$here"
for t in "${tools[@]}"; do
  name="${t%%=*}"; pkg="${t#*=}"; dir="$here"
  if [[ "$pkg" == *@* ]]; then dir="$(cd "$here/${pkg#*@}" && pwd)"; pkg="${pkg%@*}"; fi
  [[ -x "$bin/$name" ]] && continue
  store="$cache_root/go-tools/$(module_key "$dir")"
  if [[ ! -x "$store/$name" ]]; then
    echo "building $name ($pkg in $dir) into $store" >&2
    mkdir -p "$store"
    if ! (cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$store/$name.tmp" "$pkg") >&2; then
      rm -f "$store/$name.tmp"
      echo "error: building $name failed (go build $pkg in $dir); see the Go error above" >&2
      exit 1
    fi
    mv "$store/$name.tmp" "$store/$name"
  fi
  ln -f "$store/$name" "$bin/$name" 2>/dev/null || cp "$store/$name" "$bin/$name"
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
