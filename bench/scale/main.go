// Command scale measures lacre's GitOps controllers at scale against a real
// local control plane (etcd + kube-apiserver from internal/testcluster):
// one Git repository with N directories (a ConfigMap, a Service, a
// Deployment and one SOPS/age-encrypted Secret each), one GitRepository and
// N Kustomizations with decryption, lacre's controllers in-process.
//
//	go run ./bench/scale -n 100,500,1000
//
// Each N runs in a child process of its own, so the peak RSS reported
// (VmHWM) belongs to that run only. See docs/benchmarks.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/config/crd"
	"github.com/lacre/lacre/internal/controller"
	"github.com/lacre/lacre/internal/testcluster"
	"github.com/lacre/lacre/keys"
	agekeys "github.com/lacre/lacre/keys/age"
	"github.com/lacre/lacre/sops/formats"
	"github.com/lacre/lacre/sopsfile"
)

const (
	fluxNS = "flux-system"
	appsNS = "apps"
)

type config struct {
	ns         []int
	concurrent int
	binDir     string
	timeout    time.Duration
	cpuProfile string
	memProfile string
	child      bool
	out        io.Writer
}

func main() {
	var cfg config
	nflag := flag.String("n", "100,500,1000", "comma-separated numbers of Kustomizations, one run each")
	flag.IntVar(&cfg.concurrent, "concurrent", 20, "controller --concurrent (reconciles in parallel per controller)")
	flag.StringVar(&cfg.binDir, "bindir", "", "directory of kube-apiserver and etcd (default: testcluster.DefaultBinDir)")
	flag.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "per-phase timeout")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of the initial reconcile to FILE (with one N: FILE; else FILE.N)")
	flag.StringVar(&cfg.memProfile, "memprofile", "", "write a heap profile after the initial reconcile to FILE")
	flag.BoolVar(&cfg.child, "child", false, "internal: run one N in this process")
	flag.Parse()
	for _, s := range strings.Split(*nflag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "invalid -n %q\n", s)
			os.Exit(2)
		}
		cfg.ns = append(cfg.ns, n)
	}
	cfg.out = os.Stdout
	if err := run(context.Background(), cfg); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config) error {
	if cfg.child || len(cfg.ns) == 1 && os.Getenv("LACRE_SCALE_NOFORK") != "" {
		r, err := runOne(ctx, cfg, cfg.ns[0])
		if err != nil {
			return err
		}
		r.print(cfg.out)
		return nil
	}
	// One child process per N: VmHWM is per process.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	for _, n := range cfg.ns {
		args := []string{"-child", "-n", strconv.Itoa(n), "-concurrent", strconv.Itoa(cfg.concurrent), "-timeout", cfg.timeout.String()}
		if cfg.binDir != "" {
			args = append(args, "-bindir", cfg.binDir)
		}
		for flagName, v := range map[string]string{"-cpuprofile": cfg.cpuProfile, "-memprofile": cfg.memProfile} {
			if v != "" {
				if len(cfg.ns) > 1 {
					v += "." + strconv.Itoa(n)
				}
				args = append(args, flagName, v)
			}
		}
		cmd := exec.CommandContext(ctx, self, args...)
		cmd.Stdout, cmd.Stderr = cfg.out, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("N=%d: %w", n, err)
		}
	}
	return nil
}

// counter counts API requests by class.
type counter struct {
	mu sync.Mutex
	m  map[string]int64
}

func (c *counter) add(k string) {
	c.mu.Lock()
	c.m[k]++
	c.mu.Unlock()
}

func (c *counter) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

func diff(a, b map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range b {
		if d := v - a[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

type countingRT struct {
	rt http.RoundTripper
	c  *counter
}

// class names a request: the verb, and for writes what kind of write.
func class(r *http.Request) string {
	p, q := r.URL.Path, r.URL.Query()
	switch r.Method {
	case http.MethodGet:
		if q.Get("watch") == "true" || q.Get("watch") == "1" {
			return "watch"
		}
		// /api/v1/namespaces/x/secrets/name is a get, .../secrets a list.
		parts := strings.Split(strings.Trim(p, "/"), "/")
		if (parts[0] == "api" && len(parts)%2 == 1) || (parts[0] == "apis" && len(parts)%2 == 0) {
			return "list"
		}
		return "get"
	}
	verb := strings.ToLower(r.Method)
	switch {
	case q.Get("dryRun") != "":
		return verb + " (dry-run)"
	case strings.Contains(p, "/kustomizations/") && strings.HasSuffix(p, "/status"):
		return verb + " write: Kustomization status"
	case strings.Contains(p, "/gitrepositories/") && strings.HasSuffix(p, "/status"):
		return verb + " write: GitRepository status"
	case strings.Contains(p, "/events"):
		return verb + " write: Event"
	case strings.Contains(p, "/leases"):
		return verb + " write: Lease"
	}
	return verb + " write: object"
}

func (t countingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	t.c.add(class(r))
	return t.rt.RoundTrip(r)
}

type result struct {
	n, concurrent   int
	setup, create   time.Duration
	ready           time.Duration
	resync          time.Duration
	change          time.Duration
	changeAll       time.Duration
	sourceDone      time.Duration // the GitRepository has the new artifact
	rssKB           int64
	unwrapsInitial  int64
	unwrapsResync   int64
	reqInitial      map[string]int64
	reqResync       map[string]int64
	reqChange       map[string]int64
	load0, load1    string
	heapInuseMB     float64
	goroutinesAfter int
	cpuInitial      map[string]time.Duration
	cpuResync       map[string]time.Duration
}

// cpuTimes returns the CPU time (user+system) of this process and of its
// children (kube-apiserver, etcd) by command name.
func cpuTimes() map[string]time.Duration {
	out := map[string]time.Duration{}
	read := func(pid string) {
		b, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return
		}
		s := string(b)
		i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if i < 0 || j < i {
			return
		}
		name, f := s[i+1:j], strings.Fields(s[j+1:])
		if len(f) < 13 {
			return
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		out[name] += time.Duration(u+st) * 10 * time.Millisecond // USER_HZ = 100
	}
	self := strconv.Itoa(os.Getpid())
	read(self)
	tasks, _ := filepath.Glob("/proc/" + self + "/task/*/children")
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, pid := range strings.Fields(string(b)) {
			read(pid)
		}
	}
	return out
}

func diffCPU(a, b map[string]time.Duration) map[string]time.Duration {
	out := map[string]time.Duration{}
	for k, v := range b {
		out[k] = v - a[k]
	}
	return out
}

func fmtCPU(m map[string]time.Duration) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b strings.Builder
	for i, k := range ks {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %.1f s", k, m[k].Seconds())
	}
	return b.String()
}

func writes(m map[string]int64, skipStatus bool) (n int64) {
	for k, v := range m {
		if !strings.Contains(k, " write") {
			continue
		}
		if skipStatus && strings.HasSuffix(k, "Kustomization status") {
			continue
		}
		n += v
	}
	return n
}

func total(m map[string]int64) (n int64) {
	for _, v := range m {
		n += v
	}
	return n
}

func fmtReqs(m map[string]int64) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b strings.Builder
	for i, k := range ks {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", k, m[k])
	}
	return b.String()
}

func mark(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT MET"
}

func (r *result) print(w io.Writer) {
	rssMB := float64(r.rssKB) / 1024
	statusW := r.reqResync["patch write: Kustomization status"] + r.reqResync["put write: Kustomization status"]
	otherW := writes(r.reqResync, true)
	fmt.Fprintf(w, "\n## N = %d Kustomizations (--concurrent=%d, GOMAXPROCS=%d)\n\n", r.n, r.concurrent, runtime.GOMAXPROCS(0))
	fmt.Fprintf(w, "load average before: %s; after: %s\n", r.load0, r.load1)
	fmt.Fprintf(w, "setup (control plane, Git repo with %d encrypted Secrets): %s; creating the objects: %s\n\n", r.n, r.setup.Round(time.Millisecond), r.create.Round(time.Millisecond))
	fmt.Fprintf(w, "| measure | value | target |\n|---|---:|---|\n")
	fmt.Fprintf(w, "| all %d Ready (from controller start) | %.1f s | %s |\n", r.n, r.ready.Seconds(), readyTarget(r))
	fmt.Fprintf(w, "| peak RSS of the process (VmHWM; controllers + driver) | %.0f MB | < 150 MB: %s |\n", rssMB, mark(rssMB < 150))
	fmt.Fprintf(w, "| heap in use after the initial reconcile | %.0f MB | — |\n", r.heapInuseMB)
	fmt.Fprintf(w, "| API requests, initial reconcile | %d (%d writes) | — |\n", total(r.reqInitial), writes(r.reqInitial, false))
	fmt.Fprintf(w, "| key unwraps, initial reconcile | %d | — |\n", r.unwrapsInitial)
	fmt.Fprintf(w, "| no-change resync of all %d: time | %.1f s | — |\n", r.n, r.resync.Seconds())
	fmt.Fprintf(w, "| resync: key unwraps | %d | 0: %s |\n", r.unwrapsResync, mark(r.unwrapsResync == 0))
	fmt.Fprintf(w, "| resync: API writes other than Kustomization status | %d | 0: %s |\n", otherW, mark(otherW == 0))
	fmt.Fprintf(w, "| resync: Kustomization status writes | %d | (one per Kustomization) |\n", statusW)
	fmt.Fprintf(w, "| resync: API requests in all | %d | — |\n", total(r.reqResync))
	fmt.Fprintf(w, "| one Secret changed in Git: until the cluster has it | %.2f s | < 2 s: %s |\n", r.change.Seconds(), mark(r.change < 2*time.Second))
	fmt.Fprintf(w, "| one Secret changed: until the GitRepository has the new artifact | %.2f s | — |\n", r.sourceDone.Seconds())
	fmt.Fprintf(w, "| one Secret changed: until all %d applied the new revision | %.1f s | — |\n", r.n, r.changeAll.Seconds())
	fmt.Fprintf(w, "\nCPU time, initial reconcile: %s\n", fmtCPU(r.cpuInitial))
	fmt.Fprintf(w, "CPU time, resync: %s\n", fmtCPU(r.cpuResync))
	fmt.Fprintf(w, "requests, initial: %s\n", fmtReqs(r.reqInitial))
	fmt.Fprintf(w, "requests, resync (annotation patches are made by the driver's own client and not counted): %s\n", fmtReqs(r.reqResync))
	fmt.Fprintf(w, "requests, one-Secret change: %s\n", fmtReqs(r.reqChange))
}

func readyTarget(r *result) string {
	if r.n != 1000 {
		return "(1,000 in < 60 s)"
	}
	return "< 60 s: " + mark(r.ready < time.Minute)
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// vmHWM returns the process's peak resident set size in KiB.
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				return n
			}
		}
	}
	return 0
}

func runOne(ctx context.Context, cfg config, n int) (*result, error) {
	ctrl.SetLogger(logr.Discard())
	klog.SetLogger(logr.Discard()) // the event broadcaster's retries after shutdown
	res := &result{n: n, concurrent: cfg.concurrent, load0: loadavg()}
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
	base := &rest.Config{Host: cl.Host(), TLSClientConfig: rest.TLSClientConfig{CertData: cl.CertPEM, KeyData: cl.KeyPEM, Insecure: true}, QPS: -1}
	scheme := controller.NewScheme()
	_ = apiextensionsv1.AddToScheme(scheme)
	c, err := client.New(base, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	if err := installCRDs(ctx, c); err != nil {
		return nil, fmt.Errorf("installing CRDs: %w", err)
	}

	// The Git repository.
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	rcpt, err := agekeys.ParseRecipient(id.Recipient().String())
	if err != nil {
		return nil, err
	}
	repo := &gitRepo{work: work, bare: filepath.Join(work, "repos", "apps.git"), wt: filepath.Join(work, "apps"), rcpt: rcpt}
	if err := repo.init(ctx, n); err != nil {
		return nil, err
	}
	srv, err := gitServer(filepath.Join(work, "repos"))
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	res.setup = time.Since(start)

	// The objects, created before the controllers start.
	t := time.Now()
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fluxNS}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appsNS}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: "sops-age"}, StringData: map[string]string{"age.agekey": id.String()}},
		&sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: "apps"}, Spec: sourcev1.GitRepositorySpec{
			URL: srv.URL + "/apps.git", Interval: metav1.Duration{Duration: time.Hour}, Reference: &sourcev1.GitRepositoryRef{Branch: "main"}}},
	}
	for i := 0; i < n; i++ {
		objs = append(objs, &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: appName(i)}, Spec: kustomizev1.KustomizationSpec{
			Interval: metav1.Duration{Duration: time.Hour}, Path: "./apps/" + appName(i), Prune: true,
			Wait:       false, // no kubelet: Deployments never become available, so Ready depends on apply only
			SourceRef:  kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "apps"},
			Decryption: &kustomizev1.Decryption{Provider: "sops", SecretRef: &meta.LocalObjectReference{Name: "sops-age"}},
		}})
	}
	if err := parallel(ctx, objs, 16, func(o client.Object) error { return c.Create(ctx, o) }); err != nil {
		return nil, err
	}
	res.create = time.Since(t)

	// The controllers, in-process, with a counting transport.
	cnt := &counter{m: map[string]int64{}}
	mcfg := rest.CopyConfig(base)
	mcfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return countingRT{rt, cnt} }
	mgr, err := controller.NewManager(controller.Options{Config: mcfg, Concurrent: cfg.concurrent})
	if err != nil {
		return nil, err
	}
	var stopProfile func()
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
	}
	mctx, stopMgr := context.WithCancel(ctx)
	defer stopMgr()
	mgrDone := make(chan error, 1)
	t = time.Now()
	go func() { mgrDone <- mgr.Run(mctx) }()

	unwraps := func() int64 { return mgr.Kustomizations.Unwraps() }
	allReady := func() (bool, error) {
		var list kustomizev1.KustomizationList
		if err := c.List(ctx, &list, client.InNamespace(fluxNS)); err != nil {
			return false, nil
		}
		ready := 0
		for _, k := range list.Items {
			if k.Status.ObservedGeneration == k.Generation && k.Status.LastAppliedRevision != "" &&
				apimeta.IsStatusConditionTrue(k.Status.Conditions, meta.ReadyCondition) {
				ready++
			}
		}
		return ready == n, nil
	}
	// Listing N Kustomizations costs the driver CPU too: poll less often for large N.
	every := time.Duration(max(1, n/200)) * 100 * time.Millisecond
	cpu0 := cpuTimes()
	if err := waitFor(ctx, mgrDone, cfg.timeout, every, allReady); err != nil {
		return nil, fmt.Errorf("waiting for %d Ready: %w", n, err)
	}
	res.ready = time.Since(t)
	res.cpuInitial = diffCPU(cpu0, cpuTimes())
	res.reqInitial = cnt.snapshot()
	res.unwrapsInitial = unwraps()
	if stopProfile != nil {
		stopProfile()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.heapInuseMB = float64(ms.HeapInuse) / (1 << 20)
	if cfg.memProfile != "" {
		f, err := os.Create(cfg.memProfile)
		if err != nil {
			return nil, err
		}
		_ = pprof.WriteHeapProfile(f)
		f.Close()
	}
	// Let trailing requests (events, the last status writes) land.
	time.Sleep(2 * time.Second)

	// A no-change resync: requestedAt on every Kustomization.
	before, u0 := cnt.snapshot(), unwraps()
	token := time.Now().Format(time.RFC3339Nano)
	t = time.Now()
	var ks []client.Object
	for i := 0; i < n; i++ {
		ks = append(ks, &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: appName(i)}})
	}
	annotate := func(o client.Object) error {
		p := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, meta.ReconcileRequestAnnotation, token)
		return c.Patch(ctx, o, client.RawPatch("application/merge-patch+json", []byte(p)))
	}
	if err := parallel(ctx, ks, 16, annotate); err != nil {
		return nil, err
	}
	cpu0 = cpuTimes()
	if err := waitFor(ctx, mgrDone, cfg.timeout, every, func() (bool, error) {
		var list kustomizev1.KustomizationList
		if err := c.List(ctx, &list, client.InNamespace(fluxNS)); err != nil {
			return false, nil
		}
		done := 0
		for _, k := range list.Items {
			if k.Status.LastHandledReconcileAt == token {
				done++
			}
		}
		return done == n, nil
	}); err != nil {
		return nil, fmt.Errorf("waiting for the resync: %w", err)
	}
	res.resync = time.Since(t)
	res.cpuResync = diffCPU(cpu0, cpuTimes())
	time.Sleep(2 * time.Second)
	res.reqResync = diff(before, cnt.snapshot())
	res.unwrapsResync = unwraps() - u0

	// One Secret changed in Git.
	before = cnt.snapshot()
	// The middle one: a new revision requeues all N Kustomizations, and
	// the changed one waits for its turn in the queue.
	changedApp := n / 2
	if err := repo.commitSecret(ctx, changedApp, "rotated"); err != nil {
		return nil, err
	}
	t = time.Now()
	gr := &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: "apps"}}
	if err := annotate(gr); err != nil {
		return nil, err
	}
	if err := waitFor(ctx, mgrDone, cfg.timeout, 20*time.Millisecond, func() (bool, error) {
		if res.sourceDone == 0 {
			g := &sourcev1.GitRepository{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: fluxNS, Name: "apps"}, g); err == nil &&
				g.Status.Artifact != nil && !strings.HasSuffix(g.Status.Artifact.Revision, repo.initialRev) {
				res.sourceDone = time.Since(t)
			}
		}
		s := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: appsNS, Name: "secret-" + appName(changedApp)}, s); err != nil {
			return false, nil
		}
		return string(s.Data["password"]) == "rotated", nil
	}); err != nil {
		return nil, fmt.Errorf("waiting for the changed Secret: %w", err)
	}
	res.change = time.Since(t)
	// Then until all N have applied the new revision (N-1 of them no-ops).
	gr = &sourcev1.GitRepository{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: fluxNS, Name: "apps"}, gr); err != nil {
		return nil, err
	}
	if err := waitFor(ctx, mgrDone, cfg.timeout, every, func() (bool, error) {
		if gr.Status.Artifact == nil || strings.HasSuffix(gr.Status.Artifact.Revision, repo.initialRev) {
			if err := c.Get(ctx, client.ObjectKey{Namespace: fluxNS, Name: "apps"}, gr); err != nil {
				return false, nil
			}
			return false, nil
		}
		var list kustomizev1.KustomizationList
		if err := c.List(ctx, &list, client.InNamespace(fluxNS)); err != nil {
			return false, nil
		}
		done := 0
		for _, k := range list.Items {
			if k.Status.LastAppliedRevision == gr.Status.Artifact.Revision {
				done++
			}
		}
		return done == n, nil
	}); err != nil {
		return nil, fmt.Errorf("waiting for all at the new revision: %w", err)
	}
	res.changeAll = time.Since(t)
	time.Sleep(time.Second)
	res.reqChange = diff(before, cnt.snapshot())
	res.rssKB = vmHWM()
	res.load1 = loadavg()
	res.goroutinesAfter = runtime.NumGoroutine()
	stopMgr()
	<-mgrDone
	return res, nil
}

func appName(i int) string { return fmt.Sprintf("app-%04d", i) }

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

func waitFor(ctx context.Context, mgrDone <-chan error, timeout, every time.Duration, f func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := f()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-mgrDone:
			return fmt.Errorf("the manager stopped: %v", err)
		case <-time.After(every):
		}
	}
}

// gitRepo is a work tree pushed to a bare repository served over HTTP.
type gitRepo struct {
	work, bare, wt string
	rcpt           keys.Recipient
	initialRev     string // the first commit's hash
}

func (g *gitRepo) git(dir string, args ...string) error {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=lacre bench", "GIT_AUTHOR_EMAIL=bench@lacre.invalid",
		"GIT_COMMITTER_NAME=lacre bench", "GIT_COMMITTER_EMAIL=bench@lacre.invalid", "GIT_CONFIG_NOSYSTEM=1", "HOME="+g.work)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("git %v: %v: %s", args, err, out)
	}
	return nil
}

const (
	kustomizationTmpl = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: apps
resources:
  - configmap.yaml
  - service.yaml
  - deployment.yaml
  - secret.enc.yaml
`
	configMapTmpl = `apiVersion: v1
kind: ConfigMap
metadata:
  name: config-%[1]s
data:
  app: %[1]s
  greeting: hello
`
	serviceTmpl = `apiVersion: v1
kind: Service
metadata:
  name: svc-%[1]s
spec:
  selector:
    app: %[1]s
  ports:
    - name: http
      port: 80
      targetPort: 8080
`
	deploymentTmpl = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: deploy-%[1]s
spec:
  replicas: 1
  selector:
    matchLabels:
      app: %[1]s
  template:
    metadata:
      labels:
        app: %[1]s
    spec:
      containers:
        - name: app
          image: registry.invalid/app:1.0.0
          ports:
            - containerPort: 8080
          envFrom:
            - configMapRef:
                name: config-%[1]s
            - secretRef:
                name: secret-%[1]s
`
	secretTmpl = `apiVersion: v1
kind: Secret
metadata:
  name: secret-%s
stringData:
  user: admin
  password: %s
`
)

func (g *gitRepo) init(ctx context.Context, n int) error {
	if err := os.MkdirAll(filepath.Dir(g.bare), 0o755); err != nil {
		return err
	}
	for _, args := range [][]string{{"init", "--bare", "-q", "-b", "main", g.bare}, {"init", "-q", "-b", "main", g.wt}} {
		if err := g.git(g.work, args...); err != nil {
			return err
		}
	}
	for i := 0; i < n; i++ {
		name := appName(i)
		dir := filepath.Join(g.wt, "apps", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for f, content := range map[string]string{
			"kustomization.yaml": kustomizationTmpl,
			"configmap.yaml":     fmt.Sprintf(configMapTmpl, name),
			"service.yaml":       fmt.Sprintf(serviceTmpl, name),
			"deployment.yaml":    fmt.Sprintf(deploymentTmpl, name),
		} {
			if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o644); err != nil {
				return err
			}
		}
		if err := g.writeSecret(ctx, i, fmt.Sprintf("initial-%d", i)); err != nil {
			return err
		}
	}
	if err := g.commit("initial"); err != nil {
		return err
	}
	out, err := exec.Command("git", "-C", g.wt, "rev-parse", "HEAD").Output()
	if err != nil {
		return err
	}
	g.initialRev = strings.TrimSpace(string(out))
	return nil
}

func (g *gitRepo) writeSecret(ctx context.Context, i int, password string) error {
	enc, err := sopsfile.Encrypt(ctx, []byte(fmt.Sprintf(secretTmpl, appName(i), password)), sopsfile.EncryptOptions{
		InputFormat: formats.YAML, OutputFormat: formats.YAML, Groups: [][]keys.Recipient{{g.rcpt}},
		Rules: sopsfile.Rules{EncryptedRegex: "^(data|stringData)$"},
	})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(g.wt, "apps", appName(i), "secret.enc.yaml"), enc, 0o644)
}

func (g *gitRepo) commit(msg string) error {
	for _, args := range [][]string{{"add", "-A"}, {"commit", "-q", "-m", msg}, {"push", "-q", "-f", g.bare, "HEAD:main"}} {
		if err := g.git(g.wt, args...); err != nil {
			return err
		}
	}
	return nil
}

func (g *gitRepo) commitSecret(ctx context.Context, i int, password string) error {
	if err := g.writeSecret(ctx, i, password); err != nil {
		return err
	}
	return g.commit("change one Secret")
}

// gitServer serves the bare repositories under root with git's smart HTTP
// (git-http-backend as CGI), as internal/demo does.
func gitServer(root string) (*httptest.Server, error) {
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		return nil, fmt.Errorf("git is required: %v", err)
	}
	h := &cgi.Handler{Path: filepath.Join(strings.TrimSpace(string(out)), "git-http-backend"), Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	return httptest.NewServer(h), nil
}

func installCRDs(ctx context.Context, c client.Client) error {
	files, err := fs.Glob(crd.Bases, "bases/*.yaml")
	if err != nil || len(files) == 0 {
		return errors.New("no CRDs embedded")
	}
	for _, f := range files {
		data, err := fs.ReadFile(crd.Bases, f)
		if err != nil {
			return err
		}
		def := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(data, def); err != nil {
			return err
		}
		if err := c.Create(ctx, def); err != nil {
			return err
		}
		if err := waitFor(ctx, nil, 30*time.Second, 100*time.Millisecond, func() (bool, error) {
			got := &apiextensionsv1.CustomResourceDefinition{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(def), got); err != nil {
				return false, nil
			}
			for _, cond := range got.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		}); err != nil {
			return err
		}
	}
	// The REST mapping is discovered lazily; give discovery a moment.
	time.Sleep(time.Second)
	return nil
}
