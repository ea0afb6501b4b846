# tide-controller's image: the compiled controllers on Node.js, with the tools they run as child
# processes (kustomize, sops, tide-helm, and gpg for sops' OpenPGP keys). One image for every
# controller; --controllers chooses which run. e2e/integration/dockerfile.test.ts checks this file.
#
# Bases are pinned by exact version and by the digest of their multi-platform index as
# docker-library/repo-info records it (repos/node/remote/24.21.0-trixie-slim.md,
# repos/golang/remote/1.26.8-trixie.md). Node.js is the Makefile's NODE_VERSION; Go satisfies the
# go directive of the three modules built below.

# ---- the Go tools: the modules and pins of e2e/controlplane/build.sh, built as it builds them ----
FROM golang:1.26.8-trixie@sha256:771f3162219f7a66bb6be3fea1ba31f418932946a99ad9eac26ffd555dfcf393 AS tools
ENV CGO_ENABLED=0
# One layer per tool, each after only the files it depends on, so a change to the Helm helper
# rebuilds the helper alone.
WORKDIR /src/e2e/controlplane
COPY e2e/controlplane/go.mod e2e/controlplane/go.sum ./
RUN go build -trimpath -ldflags='-s -w' -o /out/kustomize sigs.k8s.io/kustomize/kustomize/v5
WORKDIR /src/e2e/controlplane/sops
COPY e2e/controlplane/sops/go.mod e2e/controlplane/sops/go.sum ./
RUN go build -trimpath -ldflags='-s -w' -o /out/sops github.com/getsops/sops/v3/cmd/sops
WORKDIR /src/controllers/helm/helper
COPY controllers/helm/helper/ ./
RUN go build -trimpath -ldflags='-s -w' -o /out/tide-helm .

# ---- dist/: the TypeScript compiled as `make build` compiles it ------------------------------------
FROM node:24.21.0-trixie-slim@sha256:8ec5d7557396cfe32d21c3f9c13072355ceab22b584578ca4bb28af31120cffe AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: the only ones build ssh2's optional native crypto, which ssh2 replaces with
# Node's own crypto when absent, and the slim base has no compiler for them anyway.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY controllers/ controllers/
# tide-controller and tide run through their shebang (package.json "bin").
RUN npx tsc -p tsconfig.build.json \
 && chmod 0755 dist/controllers/main.js dist/controllers/cli/main.js

# ---- node_modules/: the production dependencies only ------------------------------------------
FROM node:24.21.0-trixie-slim@sha256:8ec5d7557396cfe32d21c3f9c13072355ceab22b584578ca4bb28af31120cffe AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# ---- the image ---------------------------------------------------------------------------------
FROM node:24.21.0-trixie-slim@sha256:8ec5d7557396cfe32d21c3f9c13072355ceab22b584578ca4bb28af31120cffe
# gpg + gpg-agent: sops decrypts with a Kustomization's OpenPGP keys through them. tini as PID 1:
# gpg-agent detaches from sops, and Node would not reap it once it exits.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gpg gpg-agent tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=deps /app/node_modules node_modules/
COPY --from=build /app/dist dist/
# The names are the defaults of --kustomize-path, --sops-path and --helm-helper-path, looked up on PATH.
COPY --from=tools /out/kustomize /out/sops /out/tide-helm /usr/local/bin/
RUN ln -s /app/dist/controllers/main.js /usr/local/bin/tide-controller \
 && ln -s /app/dist/controllers/cli/main.js /usr/local/bin/tide
# Not the base's user `node` (1000) by name: a numeric user lets Kubernetes' runAsNonRoot verify it.
USER 65532:65532
ENTRYPOINT ["/usr/bin/tini", "--", "tide-controller"]
