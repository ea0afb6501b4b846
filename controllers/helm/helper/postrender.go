package main

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/resid"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
	"sigs.k8s.io/yaml"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/postrenderer"
)

// postRenderSpec is the postRender param of release.install and release.upgrade: kustomize
// passes (Flux's spec.postRenderers[].kustomize), in order, then common metadata.
type postRenderSpec struct {
	Kustomize         []kustomizeSpec   `json:"kustomize"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
}

type kustomizeSpec struct {
	Patches []patchSpec `json:"patches"`
	Images  []imageSpec `json:"images"`
}

type patchSpec struct {
	Patch  string       `json:"patch"`
	Target *patchTarget `json:"target"`
}

type patchTarget struct {
	Group              string `json:"group"`
	Version            string `json:"version"`
	Kind               string `json:"kind"`
	Name               string `json:"name"`
	Namespace          string `json:"namespace"`
	LabelSelector      string `json:"labelSelector"`
	AnnotationSelector string `json:"annotationSelector"`
}

type imageSpec struct {
	Name    string `json:"name"`
	NewName string `json:"newName"`
	NewTag  string `json:"newTag"`
	Digest  string `json:"digest"`
}

// postRenderError marks a failure of our post-renderer in the error Helm wraps it in.
type postRenderError struct{ err error }

func (e *postRenderError) Error() string { return e.err.Error() }
func (e *postRenderError) Unwrap() error { return e.err }

// postRenderStrategy is Helm's PostRenderStrategy of the param: "combined" (Helm 4's default:
// hooks and templates in one stream), "separate" (hooks and templates post-rendered apart) or
// "nohooks" (templates only, as Helm 3 did).
func postRenderStrategy(s string) (action.PostRenderStrategy, error) {
	switch s {
	case "", string(action.PostRenderStrategyCombined):
		return action.PostRenderStrategyCombined, nil
	case string(action.PostRenderStrategySeparate), string(action.PostRenderStrategyNoHooks):
		return action.PostRenderStrategy(s), nil
	}
	return "", fail("InvalidParams", "postRenderStrategy %q is not combined, separate or nohooks", s)
}

// newPostRenderer is the Helm PostRenderer of spec, or nil when spec changes nothing.
func newPostRenderer(spec *postRenderSpec) (postrenderer.PostRenderer, error) {
	if spec == nil {
		return nil, nil
	}
	r := &postRenderer{labels: spec.CommonLabels, annotations: spec.CommonAnnotations}
	for i, k := range spec.Kustomize {
		if len(k.Patches) == 0 && len(k.Images) == 0 {
			continue
		}
		kust := types.Kustomization{
			TypeMeta:  types.TypeMeta{APIVersion: types.KustomizationVersion, Kind: types.KustomizationKind},
			Resources: []string{postRenderResources},
		}
		for j, p := range k.Patches {
			if strings.TrimSpace(p.Patch) == "" {
				return nil, fail("InvalidParams", "postRender.kustomize[%d].patches[%d] has no patch", i, j)
			}
			patch := types.Patch{Patch: p.Patch}
			if t := p.Target; t != nil {
				patch.Target = &types.Selector{
					ResId: resid.ResId{
						Gvk:       resid.Gvk{Group: t.Group, Version: t.Version, Kind: t.Kind},
						Name:      t.Name,
						Namespace: t.Namespace,
					},
					LabelSelector:      t.LabelSelector,
					AnnotationSelector: t.AnnotationSelector,
				}
			}
			kust.Patches = append(kust.Patches, patch)
		}
		for j, img := range k.Images {
			if img.Name == "" {
				return nil, fail("InvalidParams", "postRender.kustomize[%d].images[%d] has no name", i, j)
			}
			kust.Images = append(kust.Images, types.Image{
				Name: img.Name, NewName: img.NewName, NewTag: img.NewTag, Digest: img.Digest,
			})
		}
		data, err := yaml.Marshal(kust)
		if err != nil {
			return nil, fail("InvalidParams", "postRender.kustomize[%d]: %v", i, err)
		}
		r.kustomizations = append(r.kustomizations, data)
	}
	if len(r.kustomizations) == 0 && len(r.labels) == 0 && len(r.annotations) == 0 {
		return nil, nil
	}
	return r, nil
}

const (
	postRenderDir       = "/post-render"
	postRenderResources = "resources.yaml"
)

// postRenderer runs kustomize in-process on an in-memory file system, once per pass, then sets
// the common labels and annotations. It never writes the manifests anywhere else.
type postRenderer struct {
	kustomizations [][]byte // kustomization.yaml of each pass
	labels         map[string]string
	annotations    map[string]string
}

var _ postrenderer.PostRenderer = (*postRenderer)(nil)

func (r *postRenderer) Run(rendered *bytes.Buffer) (*bytes.Buffer, error) {
	manifests := rendered.Bytes()
	if len(bytes.TrimSpace(manifests)) == 0 {
		return bytes.NewBuffer(manifests), nil
	}
	for i, kust := range r.kustomizations {
		out, err := kustomize(manifests, kust)
		if err != nil {
			return nil, &postRenderError{fmt.Errorf("kustomize post-renderer %d: %w", i, err)}
		}
		manifests = out
	}
	if len(r.labels) > 0 || len(r.annotations) > 0 {
		out, err := setCommonMetadata(manifests, r.labels, r.annotations)
		if err != nil {
			return nil, &postRenderError{fmt.Errorf("common metadata post-renderer: %w", err)}
		}
		manifests = out
	}
	return bytes.NewBuffer(manifests), nil
}

func kustomize(manifests, kustomization []byte) ([]byte, error) {
	fs := filesys.MakeFsInMemory()
	if err := fs.MkdirAll(postRenderDir); err != nil {
		return nil, err
	}
	if err := fs.WriteFile(postRenderDir+"/"+postRenderResources, manifests); err != nil {
		return nil, err
	}
	if err := fs.WriteFile(postRenderDir+"/kustomization.yaml", kustomization); err != nil {
		return nil, err
	}
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, postRenderDir)
	if err != nil {
		return nil, err
	}
	return resources.AsYaml()
}

// setCommonMetadata sets labels and annotations on the metadata of every object (not on
// selectors or pod templates), replacing the values of keys the objects have already.
func setCommonMetadata(manifests []byte, labels, annotations map[string]string) ([]byte, error) {
	nodes, err := (&kio.ByteReader{Reader: bytes.NewReader(manifests), OmitReaderAnnotations: true}).Read()
	if err != nil {
		return nil, err
	}
	for _, node := range nodes {
		if err := setMetadataMap(node, kyaml.LabelsField, labels); err != nil {
			return nil, err
		}
		if err := setMetadataMap(node, kyaml.AnnotationsField, annotations); err != nil {
			return nil, err
		}
	}
	var out bytes.Buffer
	if err := (&kio.ByteWriter{Writer: &out}).Write(nodes); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// setMetadataMap sets the entries of m in metadata.<field> of node (plain strings, quoted only
// where YAML needs it).
func setMetadataMap(node *kyaml.RNode, field string, m map[string]string) error {
	if len(m) == 0 {
		return nil
	}
	fields, err := node.Pipe(kyaml.LookupCreate(kyaml.MappingNode, kyaml.MetadataField, field))
	if err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if err := fields.PipeE(kyaml.SetField(k, kyaml.NewStringRNode(m[k]))); err != nil {
			return err
		}
	}
	return nil
}
