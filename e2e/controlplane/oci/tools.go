//go:build tools

// Test tools built from their Go modules: the Helm 4 CLI and the CNCF distribution registry.
package tools

import (
	_ "github.com/distribution/distribution/v3/cmd/registry"
	_ "helm.sh/helm/v4/cmd/helm"
)
