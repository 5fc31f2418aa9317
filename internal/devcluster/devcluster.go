// Package devcluster owns `lacre dev` and the state of `lacre demo --keep`:
// a local control plane (internal/testcluster) with lacre's controllers
// in-process, kept in a directory across runs, Secrets encrypted at rest,
// run in the background and stopped by its state file.
//
// The directory's layout:
//
//	dev.json                the running process: pid, its servers' pids, API server URL
//	dev.log                 the output of the background process
//	kubeconfig              admin credentials (0600), written anew at every start
//	encryption-config.yaml  kube-apiserver EncryptionConfiguration, secretbox key (0600)
//	etcd/                   etcd's data (Secrets encrypted by the API server)
//	ca.crt sa.key sa.pub apiserver-certs/
package devcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lacre/lacre/internal/controller"
	"github.com/lacre/lacre/internal/testcluster"
)

// Files in the directory.
const (
	StateFile      = "dev.json"
	LogFile        = "dev.log"
	KubeconfigFile = "kubeconfig"
	EncryptionFile = "encryption-config.yaml"
)

// FluxNamespace is created at every start, as `flux install` would.
const FluxNamespace = "flux-system"

// Options configure Serve.
type Options struct {
	Dir    string // the kept state (created 0700)
	BinDir string // kube-apiserver and etcd
	// Log receives etcd's and kube-apiserver's output (nil: discarded).
	Log *os.File
	// Out receives progress lines (nil: discarded).
	Out io.Writer
	// Install applies lacre's CRDs and RBAC with c (the owner of those
	// objects is `lacre install`).
	Install func(ctx context.Context, c client.Client) error
	// Ready is called once everything is up and the state file written.
	Ready func(State)
}

// Start starts the control plane in opts.Dir with Secrets encrypted at
// rest, a client for it, and what opts.Install applies. The caller stops
// the returned cluster.
func Start(ctx context.Context, opts Options) (*testcluster.Cluster, *rest.Config, client.Client, error) {
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, nil, nil, err
	}
	enc := filepath.Join(opts.Dir, EncryptionFile)
	if err := testcluster.WriteEncryptionConfig(enc); err != nil {
		return nil, nil, nil, err
	}
	cl, err := testcluster.Start(ctx, testcluster.Options{BinDir: opts.BinDir, Dir: opts.Dir, EncryptionConfig: enc, Log: opts.Log})
	if err != nil {
		return nil, nil, nil, err
	}
	cfg := &rest.Config{Host: cl.Host(), TLSClientConfig: rest.TLSClientConfig{CertData: cl.CertPEM, KeyData: cl.KeyPEM, Insecure: true}}
	c, err := client.New(cfg, client.Options{Scheme: controller.NewScheme()})
	if err == nil && opts.Install != nil {
		err = opts.Install(ctx, c)
	}
	if err == nil {
		err = c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: FluxNamespace}})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	}
	if err != nil {
		cl.Stop()
		return nil, nil, nil, err
	}
	return cl, cfg, c, nil
}

// Serve runs the control plane and lacre's controllers until ctx ends,
// then stops them all and removes the state file; the directory stays.
func Serve(ctx context.Context, opts Options) error {
	if st, err := ReadState(opts.Dir); err == nil && st.Running() && st.Pid != os.Getpid() {
		return fmt.Errorf("%s is already in use by process %d (lacre dev down --dir %q)", opts.Dir, st.Pid, opts.Dir)
	}
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	start := time.Now()
	fmt.Fprintf(out, "lacre dev: starting etcd and kube-apiserver in %s\n", opts.Dir)
	cl, cfg, _, err := Start(ctx, opts)
	if err != nil {
		return err
	}
	defer cl.Stop()
	mgr, err := controller.NewManager(controller.Options{Config: cfg, Concurrent: 2, MetricsAddr: "0", HealthAddr: "0"})
	if err != nil {
		return err
	}
	mctx, stopMgr := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Run(mctx) }()
	defer func() { stopMgr(); <-done }()

	st := NewState(cl.Pids(), cl.Host(), cl.Kubeconfig())
	if err := WriteState(opts.Dir, st); err != nil {
		return err
	}
	defer RemoveState(opts.Dir, st.Pid)
	fmt.Fprintf(out, "lacre dev: up in %.1fs at %s\n", time.Since(start).Seconds(), cl.Host())
	if opts.Ready != nil {
		opts.Ready(st)
	}
	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "lacre dev: stopping")
		return nil
	case err := <-done:
		done <- err
		return fmt.Errorf("the controllers stopped: %w", err)
	}
}

// ErrNotRunning is returned by Down when nothing runs in the directory.
var ErrNotRunning = errors.New("not running")
