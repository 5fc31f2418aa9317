package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/config/crd"
	"github.com/lacre/lacre/internal/controller"
	"github.com/lacre/lacre/internal/decryptor"
	"github.com/lacre/lacre/internal/testcluster"
	agekeys "github.com/lacre/lacre/keys/age"
)

// scaleRun is one N's run: the control plane, the Git repository, the
// driver's client and, once started, the controllers.
type scaleRun struct {
	cfg     config
	n       int
	res     *result
	base    *rest.Config
	c       client.Client
	id      *age.X25519Identity
	repo    *appRepo
	cnt     *counter
	mgr     *controller.Manager
	mgrDone chan error
	every   time.Duration // how often to poll lists of N Kustomizations
}

func runOne(ctx context.Context, cfg config, n int) (*result, error) {
	ctrl.SetLogger(logr.Discard())
	klog.SetLogger(logr.Discard()) // the event broadcaster's retries after shutdown
	r := &scaleRun{cfg: cfg, n: n, res: &result{n: n, concurrent: cfg.concurrent, load0: loadavg()}}
	// Listing N Kustomizations costs the driver CPU too: poll less often for large N.
	r.every = time.Duration(max(1, n/200)) * 100 * time.Millisecond
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	work, err := os.MkdirTemp("", "lacre-scale-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	cl, err := testcluster.Start(ctx, testcluster.Options{BinDir: cfg.binDir})
	if err != nil {
		return nil, err
	}
	defer cl.Stop()
	if err := r.setup(ctx, cl, work); err != nil {
		return nil, err
	}
	defer r.repo.Close()
	r.res.setup = time.Since(start)

	if err := r.createObjects(ctx); err != nil {
		return nil, err
	}
	mctx, stopMgr := context.WithCancel(ctx)
	defer stopMgr()
	for _, phase := range []func(context.Context) error{
		func(ctx context.Context) error { return r.initial(ctx, mctx) },
		r.resync,
		r.change,
	} {
		if err := phase(ctx); err != nil {
			return nil, err
		}
	}
	r.res.rssKB = vmHWM()
	r.res.load1 = loadavg()
	r.res.goroutinesAfter = runtime.NumGoroutine()
	stopMgr()
	<-r.mgrDone
	return r.res, nil
}

// setup installs the CRDs and creates the Git repository.
func (r *scaleRun) setup(ctx context.Context, cl *testcluster.Cluster, work string) error {
	r.base = &rest.Config{Host: cl.Host(), TLSClientConfig: rest.TLSClientConfig{CertData: cl.CertPEM, KeyData: cl.KeyPEM, Insecure: true}, QPS: -1}
	var err error
	if r.c, err = client.New(r.base, client.Options{Scheme: controller.NewScheme()}); err != nil {
		return err
	}
	if err := crd.Install(ctx, r.c); err != nil {
		return fmt.Errorf("installing CRDs: %w", err)
	}
	if r.id, err = age.GenerateX25519Identity(); err != nil {
		return err
	}
	rcpt, err := agekeys.ParseRecipient(r.id.Recipient().String())
	if err != nil {
		return err
	}
	r.repo, err = newAppRepo(ctx, work, r.n, rcpt)
	return err
}

// createObjects creates the objects before the controllers start.
func (r *scaleRun) createObjects(ctx context.Context) error {
	t := time.Now()
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fluxNS}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appsNS}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: "sops-age"}, StringData: map[string]string{"age" + decryptor.AgeKeySuffix: r.id.String()}},
		&sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: "apps"}, Spec: sourcev1.GitRepositorySpec{
			URL: r.repo.URL(), Interval: metav1.Duration{Duration: time.Hour}, Reference: &sourcev1.GitRepositoryRef{Branch: "main"}}},
	}
	for i := 0; i < r.n; i++ {
		objs = append(objs, &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: appName(i)}, Spec: kustomizev1.KustomizationSpec{
			Interval: metav1.Duration{Duration: time.Hour}, Path: "./apps/" + appName(i), Prune: true,
			Wait:       false, // no kubelet: Deployments never become available, so Ready depends on apply only
			SourceRef:  kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "apps"},
			Decryption: &kustomizev1.Decryption{Provider: "sops", SecretRef: &meta.LocalObjectReference{Name: "sops-age"}},
		}})
	}
	if err := parallel(ctx, objs, 16, func(o client.Object) error { return r.c.Create(ctx, o) }); err != nil {
		return err
	}
	r.res.create = time.Since(t)
	return nil
}

// initial starts the controllers in-process, with a counting transport,
// and measures the initial reconcile of all N.
func (r *scaleRun) initial(ctx, mctx context.Context) error {
	r.cnt = &counter{m: map[string]int64{}}
	mcfg := rest.CopyConfig(r.base)
	mcfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return countingRT{rt, r.cnt} }
	var err error
	if r.mgr, err = controller.NewManager(controller.Options{Config: mcfg, Concurrent: r.cfg.concurrent}); err != nil {
		return err
	}
	stopProfile := func() {}
	if r.cfg.cpuProfile != "" {
		f, err := os.Create(r.cfg.cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
	}
	r.mgrDone = make(chan error, 1)
	t := time.Now()
	go func() { r.mgrDone <- r.mgr.Run(mctx) }()

	cpu0 := cpuTimes()
	if err := r.waitFor(ctx, r.every, r.countKustomizations(ctx, func(k *kustomizev1.Kustomization) bool {
		return k.Status.ObservedGeneration == k.Generation && k.Status.LastAppliedRevision != "" &&
			apimeta.IsStatusConditionTrue(k.Status.Conditions, meta.ReadyCondition)
	})); err != nil {
		return fmt.Errorf("waiting for %d Ready: %w", r.n, err)
	}
	r.res.ready = time.Since(t)
	r.res.cpuInitial = diffCPU(cpu0, cpuTimes())
	r.res.reqInitial = r.cnt.snapshot()
	r.res.unwrapsInitial = r.mgr.Kustomizations.Unwraps()
	stopProfile()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.res.heapInuseMB = float64(ms.HeapInuse) / (1 << 20)
	if r.cfg.memProfile != "" {
		f, err := os.Create(r.cfg.memProfile)
		if err != nil {
			return err
		}
		_ = pprof.WriteHeapProfile(f)
		f.Close()
	}
	// Let trailing requests (events, the last status writes) land.
	time.Sleep(2 * time.Second)
	return nil
}

// resync measures a no-change resync: requestedAt on every Kustomization.
func (r *scaleRun) resync(ctx context.Context) error {
	before, u0 := r.cnt.snapshot(), r.mgr.Kustomizations.Unwraps()
	token := time.Now().Format(time.RFC3339Nano)
	t := time.Now()
	var ks []client.Object
	for i := 0; i < r.n; i++ {
		ks = append(ks, &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: appName(i)}})
	}
	if err := parallel(ctx, ks, 16, func(o client.Object) error { return r.annotate(ctx, o, token) }); err != nil {
		return err
	}
	cpu0 := cpuTimes()
	if err := r.waitFor(ctx, r.every, r.countKustomizations(ctx, func(k *kustomizev1.Kustomization) bool {
		return k.Status.LastHandledReconcileAt == token
	})); err != nil {
		return fmt.Errorf("waiting for the resync: %w", err)
	}
	r.res.resync = time.Since(t)
	r.res.cpuResync = diffCPU(cpu0, cpuTimes())
	time.Sleep(2 * time.Second)
	r.res.reqResync = diff(before, r.cnt.snapshot())
	r.res.unwrapsResync = r.mgr.Kustomizations.Unwraps() - u0
	return nil
}

// change measures one Secret changed in Git: until the cluster has it,
// until the GitRepository has the new artifact, until all N applied the
// new revision (N-1 of them no-ops).
func (r *scaleRun) change(ctx context.Context) error {
	before := r.cnt.snapshot()
	// The middle one: a new revision requeues all N Kustomizations, and
	// the changed one waits for its turn in the queue.
	changedApp := r.n / 2
	if err := r.repo.commitSecret(ctx, changedApp, "rotated"); err != nil {
		return err
	}
	t := time.Now()
	repoKey := client.ObjectKey{Namespace: fluxNS, Name: "apps"}
	if err := r.annotate(ctx, &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: "apps"}}, time.Now().Format(time.RFC3339Nano)); err != nil {
		return err
	}
	if err := r.waitFor(ctx, 20*time.Millisecond, func() (bool, error) {
		if r.res.sourceDone == 0 {
			g := &sourcev1.GitRepository{}
			if err := r.c.Get(ctx, repoKey, g); err == nil &&
				g.Status.Artifact != nil && !strings.HasSuffix(g.Status.Artifact.Revision, r.repo.initialRev) {
				r.res.sourceDone = time.Since(t)
			}
		}
		s := &corev1.Secret{}
		if err := r.c.Get(ctx, client.ObjectKey{Namespace: appsNS, Name: "secret-" + appName(changedApp)}, s); err != nil {
			return false, nil
		}
		return string(s.Data["password"]) == "rotated", nil
	}); err != nil {
		return fmt.Errorf("waiting for the changed Secret: %w", err)
	}
	r.res.change = time.Since(t)
	gr := &sourcev1.GitRepository{}
	if err := r.c.Get(ctx, repoKey, gr); err != nil {
		return err
	}
	atNew := r.countKustomizations(ctx, func(k *kustomizev1.Kustomization) bool {
		return k.Status.LastAppliedRevision == gr.Status.Artifact.Revision
	})
	if err := r.waitFor(ctx, r.every, func() (bool, error) {
		if gr.Status.Artifact == nil || strings.HasSuffix(gr.Status.Artifact.Revision, r.repo.initialRev) {
			_ = r.c.Get(ctx, repoKey, gr)
			return false, nil
		}
		return atNew()
	}); err != nil {
		return fmt.Errorf("waiting for all at the new revision: %w", err)
	}
	r.res.changeAll = time.Since(t)
	time.Sleep(time.Second) // let trailing requests land before counting
	r.res.reqChange = diff(before, r.cnt.snapshot())
	return nil
}

// annotate sets the reconcile-request annotation to token, with the
// driver's own client (its requests are not counted).
func (r *scaleRun) annotate(ctx context.Context, o client.Object, token string) error {
	p := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, meta.ReconcileRequestAnnotation, token)
	return r.c.Patch(ctx, o, client.RawPatch("application/merge-patch+json", []byte(p)))
}

// countKustomizations returns a condition for waitFor: all N
// Kustomizations satisfy ok.
func (r *scaleRun) countKustomizations(ctx context.Context, ok func(*kustomizev1.Kustomization) bool) func() (bool, error) {
	return func() (bool, error) {
		var list kustomizev1.KustomizationList
		if err := r.c.List(ctx, &list, client.InNamespace(fluxNS)); err != nil {
			return false, nil
		}
		done := 0
		for i := range list.Items {
			if ok(&list.Items[i]) {
				done++
			}
		}
		return done == r.n, nil
	}
}

// waitFor polls f every interval until it holds, the timeout passes or
// the manager stops.
func (r *scaleRun) waitFor(ctx context.Context, every time.Duration, f func() (bool, error)) error {
	deadline := time.Now().Add(r.cfg.timeout)
	for {
		ok, err := f()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", r.cfg.timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-r.mgrDone:
			return fmt.Errorf("the manager stopped: %v", err)
		case <-time.After(every):
		}
	}
}

func parallel(ctx context.Context, objs []client.Object, workers int, f func(client.Object) error) error {
	ch := make(chan client.Object)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range ch {
				if err := f(o); err != nil {
					firstErr.CompareAndSwap(nil, fmt.Errorf("%T %s: %w", o, o.GetName(), err))
				}
			}
		}()
	}
	for _, o := range objs {
		ch <- o
	}
	close(ch)
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	return ctx.Err()
}
