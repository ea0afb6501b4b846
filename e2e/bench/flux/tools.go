//go:build tools

// Flux's helm-controller, built from its Go module for the side-by-side run of make bench-helm.
package tools

import (
	_ "github.com/fluxcd/helm-controller"
)
