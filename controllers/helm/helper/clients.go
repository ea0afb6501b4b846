package main

import (
	"container/list"
	"io"
	"os"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"
	"helm.sh/helm/v4/pkg/storage"
	"helm.sh/helm/v4/pkg/storage/driver"
)

// target names the cluster, the identity and the release storage of a release op.
type target struct {
	// Kubeconfig is the path of a kubeconfig file; nothing else (no KUBECONFIG, no in-cluster
	// config) is ever used, so that a release op never runs as the controller itself by mistake.
	Kubeconfig  string `json:"kubeconfig"`
	Context     string `json:"context"`
	Impersonate string `json:"impersonate"`
	// StorageNamespace holds the release Secrets (Helm's "secret" driver).
	StorageNamespace string `json:"storageNamespace"`
	// Persistent (default true) reuses the clients cached for this target.
	Persistent *bool `json:"persistent"`
}

const (
	clientQPS      = 50
	clientBurst    = 100
	clientCacheMax = 64
	// mapperResetInterval bounds how often a kind missing from the cached discovery data makes
	// the REST mapper discover the API again (a CRD created since, by us or anyone else).
	mapperResetInterval = time.Second
)

// clusterClients is what requests for one target share: the REST config, the memory-cached
// discovery data and REST mapper, the kubectl factory (which caches OpenAPI schemas) and the
// release storage driver. Each request gets its own action.Configuration, kube.Client and
// storage.Storage on top of them: Helm's actions write into those (Capabilities, MaxHistory,
// the kube client's namespace), so they cannot be shared between concurrent requests.
type clusterClients struct {
	getter  *restGetter
	factory kube.Factory
	driver  driver.Driver
}

func newClusterClients(t target) (*clusterClients, error) {
	getter, err := newRESTGetter(t)
	if err != nil {
		return nil, err
	}
	factory := kube.New(getter).Factory
	clientset, err := factory.KubernetesClientSet()
	if err != nil {
		return nil, fail("InvalidParams", "kubeconfig %s: %v", t.Kubeconfig, err)
	}
	return &clusterClients{
		getter:  getter,
		factory: factory,
		driver:  driver.NewSecrets(clientset.CoreV1().Secrets(t.StorageNamespace)),
	}, nil
}

// configuration is a fresh action.Configuration on the shared clients. Manifests without a
// namespace go to `namespace` (the release's); empty means the storage namespace.
func (c *clusterClients) configuration(namespace string) *action.Configuration {
	cfg := action.NewConfiguration()
	kc := &kube.Client{Factory: c.factory, Namespace: namespace}
	kc.SetLogger(cfg.Logger().Handler())
	cfg.RESTClientGetter = c.getter
	cfg.KubeClient = kc
	cfg.Releases = storage.Init(c.driver)
	cfg.SetHookOutputFunc(func(_, _, _ string) io.Writer { return io.Discard })
	return cfg
}

// configFor builds the action.Configuration of a request from its target: this is the only
// place release ops touch a cluster, the rest of each op takes the Configuration.
func configFor(t target, namespace string) (*action.Configuration, error) {
	if t.Kubeconfig == "" || t.StorageNamespace == "" {
		return nil, fail("InvalidParams", "target needs kubeconfig and storageNamespace")
	}
	if namespace == "" {
		namespace = t.StorageNamespace
	}
	if t.Persistent != nil && !*t.Persistent {
		c, err := newClusterClients(t)
		if err != nil {
			return nil, err
		}
		return c.configuration(namespace), nil
	}
	c, err := clients.get(t)
	if err != nil {
		return nil, err
	}
	return c.configuration(namespace), nil
}

// setNamespace makes `namespace` the default namespace of the manifests cfg builds (the
// release's namespace, known once its record is read).
func setNamespace(cfg *action.Configuration, namespace string) {
	if kc, ok := cfg.KubeClient.(*kube.Client); ok && namespace != "" {
		kc.Namespace = namespace
	}
}

type cacheKey struct {
	path        string
	modTime     time.Time
	size        int64
	context     string
	impersonate string
	storage     string
}

// sameTarget reports whether k and o differ in the kubeconfig file's version at most.
func (k cacheKey) sameTarget(o cacheKey) bool {
	return k.path == o.path && k.context == o.context && k.impersonate == o.impersonate && k.storage == o.storage
}

type cacheEntry struct {
	key     cacheKey
	clients *clusterClients
}

// clientCache holds the clients of the most recently used targets. A target whose kubeconfig
// file changed (mtime or size) is a new entry; the entries of its older versions are dropped.
type clientCache struct {
	mu      sync.Mutex
	max     int
	order   *list.List // of *cacheEntry, most recent first
	entries map[cacheKey]*list.Element
}

var clients = newClientCache(clientCacheMax)

func newClientCache(max int) *clientCache {
	return &clientCache{max: max, order: list.New(), entries: map[cacheKey]*list.Element{}}
}

func (c *clientCache) get(t target) (*clusterClients, error) {
	fi, err := os.Stat(t.Kubeconfig)
	if err != nil {
		return nil, fail("InvalidParams", "kubeconfig: %v", err)
	}
	key := cacheKey{t.Kubeconfig, fi.ModTime(), fi.Size(), t.Context, t.Impersonate, t.StorageNamespace}
	c.mu.Lock()
	if el, ok := c.entries[key]; ok {
		c.order.MoveToFront(el)
		c.mu.Unlock()
		return el.Value.(*cacheEntry).clients, nil
	}
	c.mu.Unlock()

	// Built outside the lock: reading the kubeconfig may run an exec plugin. Two requests for a
	// new target may both build; the second one's clients win, which is harmless.
	cc, err := newClusterClients(t)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, el := range c.entries {
		if k != key && k.sameTarget(key) {
			c.order.Remove(el)
			delete(c.entries, k)
		}
	}
	if el, ok := c.entries[key]; ok {
		c.order.Remove(el)
	}
	c.entries[key] = c.order.PushFront(&cacheEntry{key, cc})
	for c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(*cacheEntry).key)
	}
	return cc, nil
}

// restGetter is a genericclioptions.RESTClientGetter on one kubeconfig file, with discovery
// cached in memory (the kubectl default caches it on disk).
type restGetter struct {
	clientConfig clientcmd.ClientConfig
	config       *rest.Config
	discovery    discovery.CachedDiscoveryInterface
	mapper       *refreshingMapper
}

func newRESTGetter(t target) (*restGetter, error) {
	raw, err := clientcmd.LoadFromFile(t.Kubeconfig)
	if err != nil {
		return nil, fail("InvalidParams", "kubeconfig: %v", err)
	}
	if err := clientcmd.ResolveLocalPaths(raw); err != nil {
		return nil, fail("InvalidParams", "kubeconfig %s: %v", t.Kubeconfig, err)
	}
	overrides := &clientcmd.ConfigOverrides{}
	overrides.AuthInfo.Impersonate = t.Impersonate
	overrides.Context.Namespace = t.StorageNamespace
	cc := clientcmd.NewNonInteractiveClientConfig(*raw, t.Context, overrides, nil)
	config, err := cc.ClientConfig()
	if err != nil {
		return nil, fail("InvalidParams", "kubeconfig %s: %v", t.Kubeconfig, err)
	}
	config.QPS, config.Burst = clientQPS, clientBurst
	dc, err := discovery.NewDiscoveryClientForConfig(rest.CopyConfig(config))
	if err != nil {
		return nil, fail("InvalidParams", "kubeconfig %s: %v", t.Kubeconfig, err)
	}
	cached := memory.NewMemCacheClient(dc)
	return &restGetter{
		clientConfig: cc,
		config:       config,
		discovery:    cached,
		mapper:       &refreshingMapper{mapper: restmapper.NewDeferredDiscoveryRESTMapper(cached)},
	}, nil
}

func (g *restGetter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.config), nil }

func (g *restGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return g.discovery, nil
}

func (g *restGetter) ToRESTMapper() (meta.RESTMapper, error) { return g.mapper, nil }

func (g *restGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig { return g.clientConfig }

// refreshingMapper is a discovery-backed REST mapper that discovers the API again when asked
// for a kind it does not know, at most once per mapperResetInterval. (The deferred mapper of
// client-go does so only while its discovery cache is empty, which a long-lived cache never is.)
type refreshingMapper struct {
	mapper    meta.ResettableRESTMapper
	mu        sync.Mutex
	lastReset time.Time
}

var _ meta.ResettableRESTMapper = (*refreshingMapper)(nil)

// retry resets the mapper after a no-match error unless it was reset very recently.
func (m *refreshingMapper) retry(err error) bool {
	if !meta.IsNoMatchError(err) {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if time.Since(m.lastReset) < mapperResetInterval {
		return false
	}
	m.lastReset = time.Now()
	m.mapper.Reset()
	return true
}

func (m *refreshingMapper) Reset() {
	m.mu.Lock()
	m.lastReset = time.Now()
	m.mu.Unlock()
	m.mapper.Reset()
}

func (m *refreshingMapper) KindFor(r schema.GroupVersionResource) (schema.GroupVersionKind, error) {
	gvk, err := m.mapper.KindFor(r)
	if m.retry(err) {
		return m.mapper.KindFor(r)
	}
	return gvk, err
}

func (m *refreshingMapper) KindsFor(r schema.GroupVersionResource) ([]schema.GroupVersionKind, error) {
	gvks, err := m.mapper.KindsFor(r)
	if m.retry(err) {
		return m.mapper.KindsFor(r)
	}
	return gvks, err
}

func (m *refreshingMapper) ResourceFor(r schema.GroupVersionResource) (schema.GroupVersionResource, error) {
	gvr, err := m.mapper.ResourceFor(r)
	if m.retry(err) {
		return m.mapper.ResourceFor(r)
	}
	return gvr, err
}

func (m *refreshingMapper) ResourcesFor(r schema.GroupVersionResource) ([]schema.GroupVersionResource, error) {
	gvrs, err := m.mapper.ResourcesFor(r)
	if m.retry(err) {
		return m.mapper.ResourcesFor(r)
	}
	return gvrs, err
}

func (m *refreshingMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	mapping, err := m.mapper.RESTMapping(gk, versions...)
	if m.retry(err) {
		return m.mapper.RESTMapping(gk, versions...)
	}
	return mapping, err
}

func (m *refreshingMapper) RESTMappings(gk schema.GroupKind, versions ...string) ([]*meta.RESTMapping, error) {
	mappings, err := m.mapper.RESTMappings(gk, versions...)
	if m.retry(err) {
		return m.mapper.RESTMappings(gk, versions...)
	}
	return mappings, err
}

func (m *refreshingMapper) ResourceSingularizer(resource string) (string, error) {
	return m.mapper.ResourceSingularizer(resource)
}
