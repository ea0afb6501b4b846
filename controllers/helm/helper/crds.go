package main

import (
	"bytes"
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"

	"helm.sh/helm/v4/pkg/action"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/kube"
)

// applyChartCRDs writes the CRDs of the chart's crds/ directories: its own and those of the
// subcharts vals enable (the ones Helm's install would create). Missing CRDs are created; with
// replace, existing ones are replaced (PUT, not merged), never deleted. It then waits for the
// CRDs it wrote to be established and makes cfg discover the API again. Failures have the code
// given, but for the chart's (InvalidChart, RenderFailed: a dependency condition that fails).
func applyChartCRDs(ctx context.Context, cfg *action.Configuration, path string, vals map[string]any,
	replace bool, code string,
) error {
	// A copy of the chart: processing dependencies edits it, and Helm's action does so again.
	c, err := loadChart(path)
	if err != nil {
		return fail("InvalidChart", "%v", err)
	}
	if err := chartutil.ProcessDependencies(c, copyValues(vals)); err != nil {
		return fail("RenderFailed", "chart dependencies processing failed: %v", err)
	}
	crds := c.CRDObjects()
	if len(crds) == 0 {
		return nil
	}
	written, err := writeCRDs(cfg.KubeClient, crds, replace)
	if err != nil {
		return fail(code, "%v", err)
	}
	if len(written) == 0 {
		return nil
	}
	var waiter kube.Waiter
	if c, ok := cfg.KubeClient.(kube.InterfaceWaitOptions); ok {
		waiter, err = c.GetWaiterWithOptions(kube.StatusWatcherStrategy, kube.WithWaitContext(ctx))
	} else {
		waiter, err = cfg.KubeClient.GetWaiter(kube.StatusWatcherStrategy)
	}
	if err != nil {
		return fail(code, "waiting for CRDs: %v", err)
	}
	if err := waiter.Wait(written, crdEstablishTimeout); err != nil {
		return fail(code, "waiting for CRDs to be established: %v", err)
	}
	if g := cfg.RESTClientGetter; g != nil {
		if dc, err := g.ToDiscoveryClient(); err == nil {
			dc.Invalidate()
		}
		if m, err := g.ToRESTMapper(); err == nil {
			if r, ok := m.(meta.ResettableRESTMapper); ok {
				r.Reset()
			}
		}
	}
	return nil
}

// writeCRDs creates (client-side, so that an existing CRD is left alone) each CRD of crds and,
// with replace, replaces those that exist. It returns those it wrote.
func writeCRDs(kc kube.Interface, crds []chart.CRD, replace bool) (kube.ResourceList, error) {
	var written kube.ResourceList
	for _, crd := range crds {
		if crd.File == nil || len(bytes.TrimSpace(crd.File.Data)) == 0 {
			continue
		}
		res, err := kc.Build(bytes.NewReader(crd.File.Data), false)
		if err != nil {
			return nil, fmt.Errorf("CRD file %s: %w", crd.Filename, err)
		}
		for _, info := range res {
			one := kube.ResourceList{info}
			_, err := kc.Create(one, kube.ClientCreateOptionServerSideApply(false, false))
			switch {
			case err == nil:
			case apierrors.IsAlreadyExists(err) && replace:
				if _, err := kc.Update(one, one, kube.ClientUpdateOptionServerSideApply(false, false),
					kube.ClientUpdateOptionForceReplace(true)); err != nil {
					return nil, fmt.Errorf("replacing CRD %s: %w", info.Name, err)
				}
			case apierrors.IsAlreadyExists(err):
				continue
			default:
				return nil, fmt.Errorf("creating CRD %s: %w", info.Name, err)
			}
			written = append(written, info)
		}
	}
	return written, nil
}
