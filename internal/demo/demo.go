// Package demo owns `lacre demo`: the seed guide run end to end on an
// embedded local cluster: a real etcd and kube-apiserver
// (internal/testcluster), a Git server on loopback (internal/gittest),
// lacre's controllers in-process, an age-encrypted Secret in Git.
package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/config/crd"
	"github.com/lacre/lacre/internal/controller"
	"github.com/lacre/lacre/internal/decryptor"
	"github.com/lacre/lacre/internal/devcluster"
	"github.com/lacre/lacre/internal/gittest"
	"github.com/lacre/lacre/internal/testcluster"
	"github.com/lacre/lacre/keys"
	agekeys "github.com/lacre/lacre/keys/age"
	"github.com/lacre/lacre/sops/formats"
	"github.com/lacre/lacre/sopsfile"
)

// Options configure the demo.
type Options struct {
	Out     io.Writer
	BinDir  string // kube-apiserver and etcd
	Timeout time.Duration
	// CLI, when set, runs a lacre command line (the demo then creates the
	// objects with `lacre create ...`, as a user would).
	CLI func(ctx context.Context, args ...string) error
	// Keep leaves the control plane, the Git server and the controllers
	// running after the demo until ctx ends, then cleans up as usual.
	Keep bool
	// Controllers, when set, runs the controllers instead of the demo's
	// in-process manager (the release test runs them from the image): it
	// gets the cluster's kubeconfig path and returns when they run; they
	// stop when ctx ends.
	Controllers func(ctx context.Context, kubeconfig string) error
}

// The demo's objects.
const (
	fluxNS     = "flux-system"
	objName    = "my-secrets"
	ageSecret  = "sops-age"
	secretPath = "clusters/cluster0"
)

// demo is one run's state.
type demo struct {
	opts  Options
	start time.Time
	work  string
	cl    *testcluster.Cluster
	cfg   *rest.Config
	c     client.Client
	id    *age.X25519Identity
	repo  *gittest.Repo
}

func (d *demo) step(format string, args ...any) {
	fmt.Fprintf(d.opts.Out, "\n==> [%5.1fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

const secretTemplate = `apiVersion: v1
kind: Secret
metadata:
    name: basic-auth
    namespace: default
stringData:
    user: admin
    password: %s
`

// Run runs the demo.
func Run(ctx context.Context, opts Options) error {
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Minute
	}
	keepCtx := ctx
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	work, err := os.MkdirTemp("", "lacre-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	d := &demo{opts: opts, start: time.Now(), work: work}

	if err := d.startCluster(ctx); err != nil {
		return err
	}
	defer func() { d.step("stopping the control plane and cleaning up"); d.cl.Stop() }()
	d.step("installing the GitRepository and Kustomization CRDs")
	if err := crd.Install(ctx, d.c); err != nil {
		return err
	}
	srv, err := d.gitRepo(ctx)
	if err != nil {
		return err
	}
	defer srv.Close()

	d.step("running lacre's controllers (GitRepository, Kustomization)")
	mctx, stopMgr := context.WithCancel(ctx)
	defer stopMgr()
	if err := d.runControllers(mctx); err != nil {
		return err
	}

	if err := d.createObjects(ctx); err != nil {
		return err
	}
	if err := d.follow(ctx); err != nil {
		return err
	}
	if err := d.cli(ctx, []string{"get", "sources", "git"}, []string{"get", "kustomizations"},
		[]string{"reconcile", "kustomization", objName, "--with-source"}); err != nil {
		return err
	}
	d.step("done")
	if opts.Keep {
		return d.keep(keepCtx)
	}
	return nil
}

// runControllers starts the controllers: opts.Controllers or in process.
func (d *demo) runControllers(ctx context.Context) error {
	if d.opts.Controllers != nil {
		return d.opts.Controllers(ctx, d.cl.Kubeconfig())
	}
	mgr, err := controller.NewManager(controller.Options{Config: d.cfg, Concurrent: 2})
	if err != nil {
		return err
	}
	go mgr.Run(ctx)
	return nil
}

// startCluster starts the control plane and a client for it.
func (d *demo) startCluster(ctx context.Context) error {
	d.step("starting a local control plane (etcd + kube-apiserver from %s)", d.opts.BinDir)
	// Secrets encrypted at rest, as in lacre dev: the decrypted Secret
	// never sits in the working directory as plaintext.
	enc := filepath.Join(d.work, devcluster.EncryptionFile)
	if err := testcluster.WriteEncryptionConfig(enc); err != nil {
		return err
	}
	cl, err := testcluster.Start(ctx, testcluster.Options{BinDir: d.opts.BinDir, Dir: filepath.Join(d.work, "cluster"), EncryptionConfig: enc})
	if err != nil {
		return err
	}
	fmt.Fprintf(d.opts.Out, "    API server at %s\n", cl.Host())
	d.cl = cl
	d.cfg = &rest.Config{Host: cl.Host(), TLSClientConfig: rest.TLSClientConfig{CertData: cl.CertPEM, KeyData: cl.KeyPEM, Insecure: true}}
	d.c, err = client.New(d.cfg, client.Options{Scheme: controller.NewScheme()})
	if err != nil {
		cl.Stop()
	}
	return err
}

// gitRepo generates the cluster's age identity and serves a Git
// repository holding .sops.yaml and the encrypted Secret.
func (d *demo) gitRepo(ctx context.Context) (*gittest.Server, error) {
	d.step("lacre keygen: an age identity for the cluster")
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	d.id = id
	fmt.Fprintf(d.opts.Out, "    recipient: %s\n", id.Recipient())

	d.step("a Git repository with .sops.yaml and an encrypted Secret (%s/basic-auth.yaml)", secretPath)
	root := filepath.Join(d.work, "repos")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	srv, err := gittest.Start(root, "", "")
	if err != nil {
		return nil, fmt.Errorf("git is required for the demo: %w", err)
	}
	d.repo, err = srv.CreateRepo("secrets", "main", filepath.Join(d.work, "secrets"))
	if err == nil {
		err = d.commit(ctx, "s3cr3t-from-git", "add basic-auth")
	}
	if err != nil {
		srv.Close()
		return nil, err
	}
	enc, _ := os.ReadFile(filepath.Join(d.repo.Work, secretPath, "basic-auth.yaml"))
	for _, l := range strings.Split(string(enc), "\n") {
		if strings.Contains(l, "password:") {
			fmt.Fprintf(d.opts.Out, "    in Git: %s\n", strings.TrimSpace(l))
		}
	}
	return srv, nil
}

// commit encrypts the Secret with password and pushes it with .sops.yaml.
func (d *demo) commit(ctx context.Context, password, msg string) error {
	r, err := agekeys.ParseRecipient(d.id.Recipient().String())
	if err != nil {
		return err
	}
	enc, err := sopsfile.Encrypt(ctx, []byte(fmt.Sprintf(secretTemplate, password)), sopsfile.EncryptOptions{
		InputFormat: formats.YAML, OutputFormat: formats.YAML, Groups: [][]keys.Recipient{{r}},
		Rules: sopsfile.Rules{EncryptedRegex: "^(data|stringData)$"},
	})
	if err != nil {
		return err
	}
	_, err = d.repo.Push(msg, map[string]string{
		secretPath + "/.sops.yaml":      "creation_rules:\n  - path_regex: .*.yaml\n    encrypted_regex: ^(data|stringData)$\n    age: " + d.id.Recipient().String() + "\n",
		secretPath + "/basic-auth.yaml": string(enc),
	})
	return err
}

// createObjects creates the sops-age Secret, the GitRepository and the
// Kustomization: with the lacre CLI when there is one, else directly.
func (d *demo) createObjects(ctx context.Context) error {
	if d.opts.CLI == nil {
		d.step("the sops-age Secret, the GitRepository and the Kustomization (decryption.provider: sops)")
		for _, o := range []client.Object{
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fluxNS}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: ageSecret}, StringData: map[string]string{"age" + decryptor.AgeKeySuffix: d.id.String()}},
			&sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: objName}, Spec: sourcev1.GitRepositorySpec{
				URL: d.repo.URL(), Interval: metav1.Duration{Duration: time.Minute}, Reference: &sourcev1.GitRepositoryRef{Branch: "main"}}},
			&kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: objName}, Spec: kustomizev1.KustomizationSpec{
				Interval: metav1.Duration{Duration: 10 * time.Minute}, Path: "./" + secretPath, Prune: true,
				SourceRef:  kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: objName},
				Decryption: &kustomizev1.Decryption{Provider: "sops", SecretRef: &meta.LocalObjectReference{Name: ageSecret}}}},
		} {
			if err := d.c.Create(ctx, o); err != nil {
				return err
			}
		}
		return nil
	}
	keyFile, err := d.keyFile()
	if err != nil {
		return err
	}
	if err := d.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fluxNS}}); err != nil {
		return err
	}
	return d.cli(ctx,
		[]string{"create", "secret", "sops", ageSecret, "--age-key-file=" + keyFile},
		[]string{"create", "source", "git", objName, "--url=" + d.repo.URL(), "--branch=main", "--interval=1m"},
		[]string{"create", "kustomization", objName, "--source=" + objName, "--path=./" + secretPath, "--prune=true",
			"--interval=10m", "--decryption-provider=sops", "--decryption-secret=" + ageSecret})
}

// cli runs each command line with the lacre CLI, when there is one.
func (d *demo) cli(ctx context.Context, cmds ...[]string) error {
	if d.opts.CLI == nil {
		return nil
	}
	for _, args := range cmds {
		d.step("lacre %s", strings.Join(args, " "))
		if err := d.opts.CLI(ctx, append(args, "--kubeconfig="+d.cl.Kubeconfig())...); err != nil {
			return err
		}
	}
	return nil
}

// follow waits for the Kustomization, reads the decrypted Secret back,
// changes it in Git and waits for the cluster to follow.
func (d *demo) follow(ctx context.Context) error {
	d.step("waiting for the Kustomization to be Ready")
	if err := waitFor(ctx, d.opts.Timeout, func() bool {
		k := &kustomizev1.Kustomization{}
		if err := d.c.Get(ctx, client.ObjectKey{Namespace: fluxNS, Name: objName}, k); err != nil {
			return false
		}
		cond := apimeta.FindStatusCondition(k.Status.Conditions, meta.ReadyCondition)
		if cond != nil && cond.Status == metav1.ConditionTrue {
			fmt.Fprintf(d.opts.Out, "    Ready: %s\n", cond.Message)
			return true
		}
		return false
	}); err != nil {
		return fmt.Errorf("the Kustomization did not become Ready: %w", err)
	}
	pw, err := d.password(ctx)
	if err != nil {
		return err
	}
	d.step("the Secret read back from the cluster, decrypted by the controller")
	fmt.Fprintf(d.opts.Out, "    default/basic-auth password = %s\n", pw)

	d.step("changing the password in Git and asking for a reconcile")
	if err := d.commit(ctx, "rotated-by-the-demo", "rotate the password"); err != nil {
		return err
	}
	changed := time.Now()
	repo := &sourcev1.GitRepository{}
	if err := d.c.Get(ctx, client.ObjectKey{Namespace: fluxNS, Name: objName}, repo); err != nil {
		return err
	}
	patch := client.MergeFrom(repo.DeepCopy())
	repo.Annotations = map[string]string{meta.ReconcileRequestAnnotation: time.Now().Format(time.RFC3339Nano)}
	if err := d.c.Patch(ctx, repo, patch); err != nil {
		return err
	}
	if err := waitFor(ctx, d.opts.Timeout, func() bool {
		p, err := d.password(ctx)
		return err == nil && p == "rotated-by-the-demo"
	}); err != nil {
		return fmt.Errorf("the cluster did not follow Git: %w", err)
	}
	pw, _ = d.password(ctx)
	fmt.Fprintf(d.opts.Out, "    default/basic-auth password = %s (%.1fs after the push)\n", pw, time.Since(changed).Seconds())
	return nil
}

// password reads the decrypted password from the cluster.
func (d *demo) password(ctx context.Context) (string, error) {
	sec := &corev1.Secret{}
	if err := d.c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "basic-auth"}, sec); err != nil {
		return "", err
	}
	return string(sec.Data["password"]), nil
}

func waitFor(ctx context.Context, timeout time.Duration, f func() bool) error {
	deadline := time.Now().Add(timeout)
	for !f() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}
