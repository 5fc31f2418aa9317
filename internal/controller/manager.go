package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/events"
	"github.com/lacre/lacre/internal/inventory"
	"github.com/lacre/lacre/keys"
)

// NewScheme returns a scheme with the core types and lacre's APIs.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = sourcev1.AddToScheme(s)
	_ = kustomizev1.AddToScheme(s)
	return s
}

// Options configure the controller manager.
type Options struct {
	Config *rest.Config

	MetricsAddr string // "0" disables
	HealthAddr  string // "0" disables

	LeaderElection          bool
	LeaderElectionNamespace string

	Concurrent      int
	WatchNamespaces []string // empty: all
	WatchSelector   string   // label selector for sharding

	// StoragePath is where artifacts are kept; empty means a temporary
	// directory, removed on exit.
	StoragePath string
	// StorageAddr is the artifact server's listen address (default
	// 127.0.0.1:0, a free loopback port).
	StorageAddr string
	// StorageAdvAddr is the address advertised in artifact URLs (default:
	// the listen address).
	StorageAdvAddr string

	// RequireEncryptedSecrets refuses Secrets committed without SOPS.
	RequireEncryptedSecrets bool
	// Decryption configures default and ambient keys.
	Decryption DecryptionOptions
	// Build holds the flags that change builds.
	Build BuildOptions

	// NoCrossNamespaceRefs refuses Kustomizations whose sourceRef or
	// dependsOn names another namespace (AccessDenied, Stalled).
	NoCrossNamespaceRefs bool
	// AdditiveCELDependencyCheck makes a dependsOn[].readyExpr add to
	// the built-in readiness check (Flux's feature gate).
	AdditiveCELDependencyCheck bool
	// AllowExternalArtifact: Flux's ExternalArtifact feature gate.
	AllowExternalArtifact bool
	// DefaultServiceAccount is impersonated, in the Kustomization's
	// namespace, when spec.serviceAccountName is empty.
	DefaultServiceAccount string
	// FullApplyOnRequest applies a Kustomization in full on every
	// reconcile request even when its build is unchanged
	// (--full-apply-on-request; see KustomizationReconciler).
	FullApplyOnRequest bool
	// KubeConfig: what spec.kubeConfig kubeconfigs may use
	// (--insecure-kubeconfig-exec, --insecure-kubeconfig-tls).
	KubeConfig KubeConfigOptions
	// OverrideManagers are field managers whose fields the Kustomization
	// controller takes over like kubectl's (Flux's --override-manager).
	OverrideManagers []string
	// CustomStageKinds are applied in a stage of their own
	// (--custom-apply-stage-kinds).
	CustomStageKinds inventory.StageKinds

	// EventsAddr, when set, is the URL events are also POSTed to in
	// Flux's event API format (--events-addr).
	EventsAddr string
	// RequeueDependency is when a Kustomization waiting for dependencies
	// or an artifact is tried again (--requeue-dependency; 0: 30 s).
	RequeueDependency time.Duration

	// Limits bound one Git checkout and one artifact, packaged and
	// unpacked (artifact.Limits; zero fields: the defaults).
	Limits artifact.Limits
	// ArtifactCacheSize bounds the unpacked artifacts the Kustomization
	// controller keeps in memory, in bytes (0: artifact.DefaultCacheSize).
	ArtifactCacheSize int64
	// ArtifactBudget bounds the bytes all Git checkouts and artifact
	// fetches hold at once (0: twice Limits.MaxTotalSize); see
	// artifact.Budget.
	ArtifactBudget int64

	// flags holds the flag values Complete parses.
	// RuntimeNamespace is the controller's namespace (Flux's
	// RUNTIME_NAMESPACE), where --sops-age-secret=NAME is read.
	RuntimeNamespace string

	flags struct {
		ageSecret, ageNamespaces, vaultAllowlist string
		maxArtifactMiB, artifactCacheMiB         int64
		customStageKinds                         string
		allowRemoteBases, noRemoteBases          bool
		featureGates                             string
		artifactBudgetMiB                        int64
	}
}

// Manager is a running-ready controller manager and its artifact server.
type Manager struct {
	ctrl.Manager
	Storage        *artifact.Store
	Kustomizations *KustomizationReconciler
	// Budget bounds the bytes checkouts and artifact fetches hold at once.
	Budget  *artifact.Budget
	cleanup []func()
}

// Close stops the artifact server and removes a temporary storage dir.
func (m *Manager) Close() {
	for i := len(m.cleanup) - 1; i >= 0; i-- {
		m.cleanup[i]()
	}
}

// NewManager builds the manager with the GitRepository and Kustomization
// controllers and an artifact server.
func NewManager(opts Options) (*Manager, error) {
	m := &Manager{}
	ok := false
	defer func() {
		if !ok {
			m.Close()
		}
	}()
	store, err := m.serveArtifacts(opts)
	if err != nil {
		return nil, err
	}
	m.Storage = store
	mgr, err := newCtrlManager(opts)
	if err != nil {
		return nil, err
	}
	srcEvents, err := newRecorder(mgr, opts, "source-controller")
	if err != nil {
		return nil, err
	}
	ksEvents, err := newRecorder(mgr, opts, "kustomize-controller")
	if err != nil {
		return nil, err
	}
	budget := artifact.NewBudget(opts.artifactBudget())
	m.Budget = budget
	sel, err := watchSelector(opts)
	if err != nil {
		return nil, err
	}
	rec := &GitRepositoryReconciler{
		Selector: sel,
		Budget:   budget,
		Client:   mgr.GetClient(),
		Storage:  store,
		Recorder: srcEvents,
		Limits:   opts.Limits,
	}
	if err := rec.SetupWithManager(mgr, opts.Concurrent); err != nil {
		return nil, err
	}
	ociRec := &OCIRepositoryReconciler{Selector: sel, Budget: budget, Client: mgr.GetClient(), Storage: store, Recorder: srcEvents, Limits: opts.Limits}
	if err := ociRec.SetupWithManager(mgr, opts.Concurrent); err != nil {
		return nil, err
	}
	buckets := &BucketReconciler{Selector: sel, Client: mgr.GetClient(), Storage: store, Recorder: srcEvents, Limits: opts.Limits, Budget: budget}
	if err := buckets.SetupWithManager(mgr, opts.Concurrent); err != nil {
		return nil, err
	}
	direct, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()})
	if err != nil {
		return nil, err
	}
	ks := &KustomizationReconciler{
		Config:    mgr.GetConfig(),
		Direct:    direct,
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Fetcher:   &artifact.Fetcher{Limits: opts.Limits, CacheSize: opts.ArtifactCacheSize, Budget: budget},
		Recorder:  ksEvents,
		KeyCache:  &keys.Cache{},

		DependencyRequeue: opts.RequeueDependency,

		RequireEncryptedSecrets:    opts.RequireEncryptedSecrets,
		Decryption:                 opts.Decryption,
		Build:                      opts.Build,
		NoCrossNamespaceRefs:       opts.NoCrossNamespaceRefs,
		AdditiveCELDependencyCheck: opts.AdditiveCELDependencyCheck,
		AllowExternalArtifact:      opts.AllowExternalArtifact,
		DefaultServiceAccount:      opts.DefaultServiceAccount,
		FullApplyOnRequest:         opts.FullApplyOnRequest,
		KubeConfig:                 opts.KubeConfig,
		OverrideManagers:           opts.OverrideManagers,
		CustomStageKinds:           opts.CustomStageKinds,
	}
	if err := ks.SetupWithManager(context.Background(), mgr, opts.Concurrent); err != nil {
		return nil, err
	}
	m.Kustomizations = ks
	m.Manager = mgr
	ok = true
	return m, nil
}

// newRecorder returns the event recorder of a controller, named as Flux's
// (the Kubernetes events' source and the reportingController), which
// delivers to opts.EventsAddr while the manager runs.
func newRecorder(mgr ctrl.Manager, opts Options, name string) (*events.Recorder, error) {
	host, _ := os.Hostname()
	rec, err := events.NewRecorder(mgr.GetEventRecorderFor(name), mgr.GetScheme(), events.Options{
		Address: opts.EventsAddr, Controller: name, Instance: host, Log: ctrl.Log.WithName("events").WithName(name),
	})
	if err != nil {
		return nil, err
	}
	return rec, mgr.Add(rec)
}

// serveArtifacts opens the artifact store (a temporary directory, removed
// on Close, when opts has no path) and serves it.
func (m *Manager) serveArtifacts(opts Options) (*artifact.Store, error) {
	dir := opts.StoragePath
	if dir == "" {
		d, err := os.MkdirTemp("", "lacre-artifacts-")
		if err != nil {
			return nil, err
		}
		dir = d
		m.cleanup = append(m.cleanup, func() { os.RemoveAll(d) })
	}
	store, err := artifact.NewStore(dir, "")
	if err != nil {
		return nil, err
	}
	addr := opts.StorageAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	url, stop, err := store.Serve(addr)
	if err != nil {
		return nil, fmt.Errorf("artifact server: %w", err)
	}
	m.cleanup = append(m.cleanup, stop)
	if opts.StorageAdvAddr != "" {
		url = "http://" + opts.StorageAdvAddr
	}
	store.SetBaseURL(url)
	return store, nil
}

// newCtrlManager builds controller-runtime's manager: its cache (the
// watched namespaces and label selector), metrics, probes and leader
// election.
func newCtrlManager(opts Options) (ctrl.Manager, error) {
	cacheOpts := cache.Options{}
	if len(opts.WatchNamespaces) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range opts.WatchNamespaces {
			cacheOpts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	sel, err := watchSelector(opts)
	if err != nil {
		return nil, err
	}
	leaderID := "lacre-controller-leader"
	if sel != nil {
		// As Flux: the shard's Kustomizations only are cached; every
		// GitRepository is (a shard's Kustomizations may use a source
		// another shard reconciles), the GitRepository controller
		// filters. Each shard elects its own leader.
		cacheOpts.ByObject = map[client.Object]cache.ByObject{&kustomizev1.Kustomization{}: {Label: sel}}
		sum := sha256.Sum256([]byte(opts.WatchSelector))
		leaderID += "-" + hex.EncodeToString(sum[:4])
	}
	metricsAddr := opts.MetricsAddr
	if metricsAddr == "" {
		metricsAddr = "0"
	}
	healthAddr := opts.HealthAddr
	if healthAddr == "" {
		healthAddr = "0"
	}
	mgr, err := ctrl.NewManager(opts.Config, ctrl.Options{
		Scheme:                  NewScheme(),
		Metrics:                 metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress:  healthAddr,
		LeaderElection:          opts.LeaderElection,
		LeaderElectionID:        leaderID,
		LeaderElectionNamespace: opts.LeaderElectionNamespace,
		Cache:                   cacheOpts,
		// One process may run several managers (the demo, tests); the
		// controllers' metrics are shared, their names need not be unique.
		Controller: ctrlconfig.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, err
	}
	if healthAddr != "0" {
		_ = mgr.AddHealthzCheck("ping", healthz.Ping)
		_ = mgr.AddReadyzCheck("ping", healthz.Ping)
	}
	return mgr, nil
}

// watchSelector parses --watch-label-selector (nil when unset).
func watchSelector(opts Options) (labels.Selector, error) {
	if opts.WatchSelector == "" {
		return nil, nil
	}
	sel, err := labels.Parse(opts.WatchSelector)
	if err != nil {
		return nil, fmt.Errorf("invalid --watch-label-selector: %w", err)
	}
	return sel, nil
}

// Run starts the manager until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	defer m.Close()
	return m.Start(ctx)
}
