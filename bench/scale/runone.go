package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
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
	"github.com/lacre/lacre/internal/testsupport"
	agekeys "github.com/lacre/lacre/keys/age"
)

// scaleRun is one N's run: the control plane, the Git repository, the
// driver's client and, once started, the controller processes.
type scaleRun struct {
	cfg    config
	n      int
	shards int
	res    *result
	cl     *testcluster.Cluster
	base   *rest.Config
	c      client.Client
	id     *age.X25519Identity
	repo   *appRepo
	procs  []*ctlProc
	every  time.Duration // how often to poll lists of N Kustomizations
	failed chan error    // a controller process ended
}

func runOne(ctx context.Context, cfg config, n, shards int) (*result, error) {
	ctrl.SetLogger(logr.Discard())
	klog.SetLogger(logr.Discard()) // the event broadcaster's retries after shutdown
	r := &scaleRun{cfg: cfg, n: n, shards: shards, res: &result{N: n, Shards: shards, Concurrent: cfg.concurrent, Load0: loadavg()}, failed: make(chan error, shards)}
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
	r.cl = cl
	if err := r.setup(ctx, work); err != nil {
		return nil, err
	}
	defer r.repo.Close()
	r.res.setup = time.Since(start)

	if err := r.createObjects(ctx); err != nil {
		return nil, err
	}
	defer r.stopControllers()
	for _, phase := range []func(context.Context) error{
		r.floor,
		func(ctx context.Context) error { return r.initial(ctx, work) },
		r.resync,
		r.change,
	} {
		if err := phase(ctx); err != nil {
			return nil, err
		}
	}
	r.res.RSSKB = rssKB(r.procs)
	r.res.driverRSSKB = vmHWM("self")
	r.res.Load1 = loadavg()
	return r.res, r.stopControllers()
}

// stopControllers stops the controller processes (once).
func (r *scaleRun) stopControllers() error {
	var first error
	for _, p := range r.procs {
		if err := p.stop(); err != nil && first == nil {
			first = err
		}
	}
	r.procs = nil
	return first
}

// setup installs the CRDs and creates the Git repository.
func (r *scaleRun) setup(ctx context.Context, work string) error {
	r.base = &rest.Config{Host: r.cl.Host(), TLSClientConfig: rest.TLSClientConfig{CertData: r.cl.CertPEM, KeyData: r.cl.KeyPEM, Insecure: true}, QPS: -1}
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

// countingClient is a client of the driver's whose requests cnt counts.
func (r *scaleRun) countingClient(cnt *testsupport.RequestCounter) (client.Client, error) {
	cfg := rest.CopyConfig(r.base)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return cnt.Wrap(rt) }
	return client.New(cfg, client.Options{Scheme: controller.NewScheme()})
}

// kustomization is app i's Kustomization in namespace ns, labelled for
// its shard when there are several.
func (r *scaleRun) kustomization(ns string, i int) *kustomizev1.Kustomization {
	k := &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: appName(i)}, Spec: kustomizev1.KustomizationSpec{
		Interval: metav1.Duration{Duration: time.Hour}, Path: "./apps/" + appName(i), Prune: true,
		Wait:       false, // no kubelet: Deployments never become available, so Ready depends on apply only
		SourceRef:  kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "apps", Namespace: fluxNS},
		Decryption: &kustomizev1.Decryption{Provider: "sops", SecretRef: &meta.LocalObjectReference{Name: "sops-age"}},
	}}
	if r.shards > 1 {
		k.Labels = map[string]string{shardKey: shardName(i % r.shards)}
	}
	return k
}

// createObjects creates the objects before the controllers start.
func (r *scaleRun) createObjects(ctx context.Context) error {
	t := time.Now()
	src := &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: "apps"}, Spec: sourcev1.GitRepositorySpec{
		URL: r.repo.URL(), Interval: metav1.Duration{Duration: time.Hour}, Reference: &sourcev1.GitRepositoryRef{Branch: "main"}}}
	if r.shards > 1 {
		src.Labels = map[string]string{shardKey: shardName(0)} // one shard fetches it, all read it
	}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fluxNS}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appsNS}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: "sops-age"}, StringData: map[string]string{"age" + decryptor.AgeKeySuffix: r.id.String()}},
		src,
	}
	for i := 0; i < r.n; i++ {
		objs = append(objs, r.kustomization(fluxNS, i))
	}
	if err := parallel(ctx, objs[:4], 1, func(o client.Object) error { return r.c.Create(ctx, o) }); err != nil {
		return err
	}
	if err := parallel(ctx, objs[4:], 16, func(o client.Object) error { return r.c.Create(ctx, o) }); err != nil {
		return err
	}
	r.res.create = time.Since(t)
	return nil
}

// initial starts the controller processes and measures the initial
// reconcile of all N.
func (r *scaleRun) initial(ctx context.Context, work string) error {
	t := time.Now()
	cpu0 := cpuTimes(nil)
	procs, err := startControllers(r.cfg, r.cl.Host(), r.cl.CertPEM, r.cl.KeyPEM, work, r.shards, r.failed)
	r.procs = procs
	if err != nil {
		return err
	}
	if err := r.waitFor(ctx, r.every, r.countKustomizations(ctx, func(k *kustomizev1.Kustomization) bool {
		return k.Status.ObservedGeneration == k.Generation && k.Status.LastAppliedRevision != "" &&
			apimeta.IsStatusConditionTrue(k.Status.Conditions, meta.ReadyCondition)
	})); err != nil {
		return fmt.Errorf("waiting for %d Ready: %w", r.n, err)
	}
	r.res.Ready = time.Since(t)
	r.res.cpuInitial = diffCPU(cpu0, cpuTimes(r.procs))
	rep, err := r.settle()
	if err != nil {
		return err
	}
	r.res.reqInitial, r.res.unwrapsInitial, r.res.HeapInuseMB = rep.Requests, rep.Unwraps, rep.HeapInuseMB
	return nil
}

// settle waits until the controllers' request counts stop moving (trailing
// events and status writes land) and returns their sum.
func (r *scaleRun) settle() (ctlReport, error) {
	prev, err := reports(r.procs)
	if err != nil {
		return prev, err
	}
	for i := 0; i < 60; i++ {
		time.Sleep(time.Second)
		cur, err := reports(r.procs)
		if err != nil {
			return cur, err
		}
		if fmt.Sprint(cur.Requests) == fmt.Sprint(prev.Requests) {
			return cur, nil
		}
		prev = cur
	}
	return prev, nil
}

// resync measures a no-change resync: requestedAt on every Kustomization.
func (r *scaleRun) resync(ctx context.Context) error {
	before, err := reports(r.procs)
	if err != nil {
		return err
	}
	token := time.Now().Format(time.RFC3339Nano)
	t := time.Now()
	var ks []client.Object
	for i := 0; i < r.n; i++ {
		ks = append(ks, &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: appName(i)}})
	}
	if err := parallel(ctx, ks, 16, func(o client.Object) error { return r.annotate(ctx, o, token) }); err != nil {
		return err
	}
	cpu0 := cpuTimes(r.procs)
	if err := r.waitFor(ctx, r.every, r.countKustomizations(ctx, func(k *kustomizev1.Kustomization) bool {
		return k.Status.LastHandledReconcileAt == token
	})); err != nil {
		return fmt.Errorf("waiting for the resync: %w", err)
	}
	r.res.Resync = time.Since(t)
	r.res.cpuResync = diffCPU(cpu0, cpuTimes(r.procs))
	after, err := r.settle()
	if err != nil {
		return err
	}
	r.res.ReqResync = testsupport.DiffCounts(before.Requests, after.Requests)
	r.res.UnwrapsResync = after.Unwraps - before.Unwraps
	return nil
}

// change measures one Secret changed in Git: until the cluster has it,
// until the GitRepository has the new artifact, until all N applied the
// new revision (N-1 of them no-ops).
func (r *scaleRun) change(ctx context.Context) error {
	before, err := reports(r.procs)
	if err != nil {
		return err
	}
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
	r.res.Change = time.Since(t)
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
	r.res.ChangeAll = time.Since(t)
	after, err := r.settle()
	if err != nil {
		return err
	}
	r.res.reqChange = testsupport.DiffCounts(before.Requests, after.Requests)
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
		case err := <-r.failed:
			return err
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
