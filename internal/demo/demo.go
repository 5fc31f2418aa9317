// Package demo runs the seed guide end to end on an embedded local
// cluster: a real etcd and kube-apiserver, a Git server on loopback,
// lacre's controllers in-process, an age-encrypted Secret in Git.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
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

// Options configure the demo.
type Options struct {
	Out     io.Writer
	BinDir  string // kube-apiserver and etcd
	Timeout time.Duration
	// CLI, when set, runs a lacre command line (the demo then creates the
	// objects with `lacre create ...`, as a user would).
	CLI func(ctx context.Context, args ...string) error
}

type demo struct {
	out   io.Writer
	start time.Time
	work  string
}

func (d *demo) step(format string, args ...any) {
	fmt.Fprintf(d.out, "\n==> [%5.1fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func (d *demo) git(dir string, args ...string) error {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=lacre demo", "GIT_AUTHOR_EMAIL=demo@lacre.invalid",
		"GIT_COMMITTER_NAME=lacre demo", "GIT_COMMITTER_EMAIL=demo@lacre.invalid", "GIT_CONFIG_NOSYSTEM=1", "HOME="+d.work)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("git %v: %v: %s", args, err, out)
	}
	return nil
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
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	work, err := os.MkdirTemp("", "lacre-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	d := &demo{out: opts.Out, start: time.Now(), work: work}

	d.step("starting a local control plane (etcd + kube-apiserver from %s)", opts.BinDir)
	cl, err := testcluster.Start(ctx, testcluster.Options{BinDir: opts.BinDir})
	if err != nil {
		return err
	}
	defer func() { d.step("stopping the control plane and cleaning up"); cl.Stop() }()
	fmt.Fprintf(d.out, "    API server at %s\n", cl.Host())
	cfg := &rest.Config{Host: cl.Host(), TLSClientConfig: rest.TLSClientConfig{CertData: cl.CertPEM, KeyData: cl.KeyPEM, Insecure: true}}
	scheme := controller.NewScheme()
	_ = apiextensionsv1.AddToScheme(scheme)
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}

	d.step("installing the GitRepository and Kustomization CRDs")
	if err := installCRDs(ctx, c); err != nil {
		return err
	}

	d.step("lacre keygen: an age identity for the cluster")
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "    recipient: %s\n", id.Recipient())

	d.step("a Git repository with .sops.yaml and an encrypted Secret (clusters/cluster0/basic-auth.yaml)")
	bare := filepath.Join(work, "repos", "secrets.git")
	wt := filepath.Join(work, "secrets")
	if err := os.MkdirAll(filepath.Dir(bare), 0o755); err != nil {
		return err
	}
	for _, args := range [][]string{{"init", "--bare", "-q", "-b", "main", bare}, {"init", "-q", "-b", "main", wt}} {
		if err := d.git(work, args...); err != nil {
			return err
		}
	}
	if err := d.git(bare, "config", "http.receivepack", "true"); err != nil {
		return err
	}
	srv, err := gitServer(filepath.Join(work, "repos"))
	if err != nil {
		return err
	}
	defer srv.Close()
	r, _ := agekeys.ParseRecipient(id.Recipient().String())
	commit := func(password, msg string) error {
		enc, err := sopsfile.Encrypt(ctx, []byte(fmt.Sprintf(secretTemplate, password)), sopsfile.EncryptOptions{
			InputFormat: formats.YAML, OutputFormat: formats.YAML, Groups: [][]keys.Recipient{{r}},
			Rules: sopsfile.Rules{EncryptedRegex: "^(data|stringData)$"},
		})
		if err != nil {
			return err
		}
		dir := filepath.Join(wt, "clusters", "cluster0")
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, ".sops.yaml"), []byte("creation_rules:\n  - path_regex: .*.yaml\n    encrypted_regex: ^(data|stringData)$\n    age: "+id.Recipient().String()+"\n"), 0o644)
		if err := os.WriteFile(filepath.Join(dir, "basic-auth.yaml"), enc, 0o644); err != nil {
			return err
		}
		for _, args := range [][]string{{"add", "-A"}, {"commit", "-q", "-m", msg}, {"push", "-q", "-f", bare, "HEAD:main"}} {
			if err := d.git(wt, args...); err != nil {
				return err
			}
		}
		return nil
	}
	if err := commit("s3cr3t-from-git", "add basic-auth"); err != nil {
		return err
	}
	enc, _ := os.ReadFile(filepath.Join(wt, "clusters", "cluster0", "basic-auth.yaml"))
	for _, l := range strings.Split(string(enc), "\n") {
		if strings.Contains(l, "password:") {
			fmt.Fprintf(d.out, "    in Git: %s\n", strings.TrimSpace(l))
		}
	}

	d.step("running lacre's controllers (GitRepository, Kustomization)")
	mgr, err := controller.NewManager(controller.Options{Config: cfg, Concurrent: 2})
	if err != nil {
		return err
	}
	mctx, stopMgr := context.WithCancel(ctx)
	defer stopMgr()
	go mgr.Run(mctx)

	if opts.CLI != nil {
		kc := cl.Kubeconfig()
		keyFile := filepath.Join(work, "age.agekey")
		if err := os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600); err != nil {
			return err
		}
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "flux-system"}}); err != nil {
			return err
		}
		for _, args := range [][]string{
			{"create", "secret", "sops", "sops-age", "--age-key-file=" + keyFile},
			{"create", "source", "git", "my-secrets", "--url=" + srv.URL + "/secrets.git", "--branch=main", "--interval=1m"},
			{"create", "kustomization", "my-secrets", "--source=my-secrets", "--path=./clusters/cluster0", "--prune=true",
				"--interval=10m", "--decryption-provider=sops", "--decryption-secret=sops-age"},
		} {
			d.step("lacre %s", strings.Join(args, " "))
			if err := opts.CLI(ctx, append(args, "--kubeconfig="+kc)...); err != nil {
				return err
			}
		}
	} else {
		d.step("the sops-age Secret, the GitRepository and the Kustomization (decryption.provider: sops)")
		for _, o := range []client.Object{
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "flux-system"}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "sops-age"}, StringData: map[string]string{"age.agekey": id.String()}},
			&sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "my-secrets"}, Spec: sourcev1.GitRepositorySpec{
				URL: srv.URL + "/secrets.git", Interval: metav1.Duration{Duration: time.Minute}, Reference: &sourcev1.GitRepositoryRef{Branch: "main"}}},
			&kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "my-secrets"}, Spec: kustomizev1.KustomizationSpec{
				Interval: metav1.Duration{Duration: 10 * time.Minute}, Path: "./clusters/cluster0", Prune: true,
				SourceRef:  kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "my-secrets"},
				Decryption: &kustomizev1.Decryption{Provider: "sops", SecretRef: &meta.LocalObjectReference{Name: "sops-age"}}}},
		} {
			if err := c.Create(ctx, o); err != nil {
				return err
			}
		}

	}
	d.step("waiting for the Kustomization to be Ready")
	if err := waitFor(ctx, opts.Timeout, func() (bool, error) {
		k := &kustomizev1.Kustomization{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: "flux-system", Name: "my-secrets"}, k); err != nil {
			return false, nil
		}
		cond := apimeta.FindStatusCondition(k.Status.Conditions, meta.ReadyCondition)
		if cond != nil && cond.Status == metav1.ConditionTrue {
			fmt.Fprintf(d.out, "    Ready: %s\n", cond.Message)
			return true, nil
		}
		return false, nil
	}); err != nil {
		return fmt.Errorf("the Kustomization did not become Ready: %w", err)
	}
	read := func() (string, error) {
		sec := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "basic-auth"}, sec); err != nil {
			return "", err
		}
		return string(sec.Data["password"]), nil
	}
	pw, err := read()
	if err != nil {
		return err
	}
	d.step("the Secret read back from the cluster, decrypted by the controller")
	fmt.Fprintf(d.out, "    default/basic-auth password = %s\n", pw)

	d.step("changing the password in Git and asking for a reconcile")
	if err := commit("rotated-by-the-demo", "rotate the password"); err != nil {
		return err
	}
	changed := time.Now()
	repo := &sourcev1.GitRepository{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "flux-system", Name: "my-secrets"}, repo); err != nil {
		return err
	}
	patch := client.MergeFrom(repo.DeepCopy())
	repo.Annotations = map[string]string{meta.ReconcileRequestAnnotation: time.Now().Format(time.RFC3339Nano)}
	if err := c.Patch(ctx, repo, patch); err != nil {
		return err
	}
	if err := waitFor(ctx, opts.Timeout, func() (bool, error) {
		p, err := read()
		return err == nil && p == "rotated-by-the-demo", nil
	}); err != nil {
		return fmt.Errorf("the cluster did not follow Git: %w", err)
	}
	pw, _ = read()
	fmt.Fprintf(d.out, "    default/basic-auth password = %s (%.1fs after the push)\n", pw, time.Since(changed).Seconds())
	if opts.CLI != nil {
		for _, args := range [][]string{{"get", "sources", "git"}, {"get", "kustomizations"}, {"reconcile", "kustomization", "my-secrets", "--with-source"}} {
			d.step("lacre %s", strings.Join(args, " "))
			if err := opts.CLI(ctx, append(args, "--kubeconfig="+cl.Kubeconfig())...); err != nil {
				return err
			}
		}
	}
	d.step("done")
	return nil
}

func waitFor(ctx context.Context, timeout time.Duration, f func() (bool, error)) error {
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
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func gitServer(root string) (*httptest.Server, error) {
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		return nil, fmt.Errorf("git is required for the demo: %v", err)
	}
	h := &cgi.Handler{Path: filepath.Join(strings.TrimSpace(string(out)), "git-http-backend"), Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	return httptest.NewServer(http.HandlerFunc(h.ServeHTTP)), nil
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
		if err := waitFor(ctx, 30*time.Second, func() (bool, error) {
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
	time.Sleep(time.Second)
	return nil
}
