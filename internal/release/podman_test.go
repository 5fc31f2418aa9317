package release

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/lacre/lacre/internal/demo"
	"github.com/lacre/lacre/internal/testcluster"
)

// podman runs podman with a storage of this test's own (vfs: no overlay
// mounts needed), away from the machine's images.
type podman struct {
	t    *testing.T
	base []string
}

func newPodman(t *testing.T) *podman {
	bin, err := exec.LookPath("podman")
	if err != nil {
		t.Skip("podman is not installed (hack/test.sh installs it from Debian's packages when run as root): the image is not run")
	}
	dir := filepath.Join(tmpRoot, "podman")
	base := []string{bin, "--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"), "--storage-driver", "vfs"}
	// crun refuses hybrid cgroup hierarchies; runc runs there.
	if _, err := exec.LookPath("runc"); err == nil {
		base = append(base, "--runtime", "runc")
	}
	return &podman{t: t, base: base}
}

func (p *podman) run(args ...string) (string, error) {
	cmd := exec.Command(p.base[0], append(slices.Clip(p.base[1:]), args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (p *podman) must(args ...string) string {
	p.t.Helper()
	out, err := p.run(args...)
	if err != nil {
		p.t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestImageRunsControllers loads the release image into podman and runs
// lacre-cluster controller from it as install.yaml's Deployment does (its
// command, arguments, user, read-only root, no capabilities, memory-backed
// /data and /tmp), with host networking against a local control plane;
// the seed guide's age flow (internal/demo) goes Ready through it.
func TestImageRunsControllers(t *testing.T) {
	p := newPodman(t)
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	o, res := built(t)
	p.must("load", "-i", filepath.Join(o.Out, o.ImageArchive()))
	ref := strings.TrimSuffix(res.ImageRef, "@"+res.ImageDigest)
	if user := strings.TrimSpace(p.must("image", "inspect", "--format", "{{.User}}", ref)); user != "65532:65532" {
		t.Errorf("image user %q", user)
	}
	if out, err := p.run(append(p.runFlags(), "--rm", "--entrypoint", "/bin/sh", ref, "-c", "true")...); err == nil {
		t.Errorf("the image has a shell:\n%s", out)
	}
	dep := installDeployment(t, read(t, o.Out, InstallFile))
	var out bytes.Buffer
	err := demo.Run(context.Background(), demo.Options{Out: &out, BinDir: testcluster.DefaultBinDir(),
		Controllers: func(ctx context.Context, kubeconfig string) error {
			return p.startController(ctx, ref, dep, kubeconfig)
		}})
	if errors.Is(err, testcluster.ErrNoBinaries) && os.Getenv("CI") != "true" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"password = s3cr3t-from-git", "password = rotated-by-the-demo", "Ready: Applied revision: main@sha1:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}

// runFlags are the Deployment's security settings as podman flags, and
// the limits this sandbox allows.
func (p *podman) runFlags() []string {
	var nofile syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile)
	return []string{"--network", "host", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		"--user", "65532:65532", "--cgroup-manager", "cgroupfs",
		"--ulimit", fmt.Sprintf("nofile=%d:%d", nofile.Cur, nofile.Cur), "--ulimit", "nproc=4096:4096"}
}

// startController runs the Deployment's container in podman; it stops
// when ctx ends and is removed (its log shown if the test failed) at the
// test's end.
func (p *podman) startController(ctx context.Context, image string, dep *appsv1.Deployment, kubeconfig string) error {
	c := dep.Spec.Template.Spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || *sc.RunAsUser != 65532 {
		return fmt.Errorf("the Deployment's securityContext changed: %+v", sc)
	}
	ns := dep.Namespace
	if err := createNamespace(ctx, kubeconfig, ns); err != nil {
		return err
	}
	// The kubeconfig, readable by the container's user.
	kc := filepath.Join(tmpRoot, "kubeconfig")
	b, err := os.ReadFile(kubeconfig)
	if err == nil {
		err = os.WriteFile(kc, b, 0o644)
	}
	if err != nil {
		return err
	}
	args := append(p.runFlags(), "-d", "--name", "lacre-release-test", "-v", kc+":/kube/config:ro", "-e", "KUBECONFIG=/kube/config")
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace" {
			v = ns
		}
		args = append(args, "-e", e.Name+"="+v)
	}
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory {
			return fmt.Errorf("volume %s is not a memory emptyDir", v.Name)
		}
		for _, m := range c.VolumeMounts {
			if m.Name == v.Name {
				// U: owned by the container's user, as fsGroup makes the
				// pod's emptyDir writable for it.
				args = append(args, "--tmpfs", fmt.Sprintf("%s:rw,size=%dk,U", m.MountPath, v.EmptyDir.SizeLimit.Value()>>10))
			}
		}
	}
	args = append(args, "--entrypoint", c.Command[0], image)
	args = append(args, hostArgs(c.Args)...)
	_, _ = p.run("rm", "-f", "lacre-release-test")
	if out, err := p.run(append([]string{"run"}, args...)...); err != nil {
		return fmt.Errorf("podman run: %v\n%s", err, out)
	}
	go func() { <-ctx.Done(); _, _ = p.run("stop", "-t", "2", "lacre-release-test") }()
	p.t.Cleanup(func() {
		if p.t.Failed() {
			out, _ := p.run("logs", "lacre-release-test")
			p.t.Logf("controller's log:\n%s", out)
		}
		_, _ = p.run("rm", "-f", "-t", "0", "lacre-release-test")
	})
	return nil
}

// hostArgs are the Deployment's arguments with the listen addresses on
// free loopback ports (the pod's network is the host's here).
func hostArgs(args []string) []string {
	var out []string
	storage := ""
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		switch name {
		case "--metrics-addr", "--health-addr":
			a = name + "=" + freeAddr()
		case "--storage-addr":
			storage = freeAddr()
			a = name + "=" + storage
		case "--storage-adv-addr":
			continue
		}
		out = append(out, a)
	}
	if storage != "" {
		out = append(out, "--storage-adv-addr="+storage)
	}
	return out
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer l.Close()
	return l.Addr().String()
}

func createNamespace(ctx context.Context, kubeconfig, ns string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	return client.IgnoreAlreadyExists(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
}

// installDeployment is install.yaml's Deployment.
func installDeployment(t *testing.T, y string) *appsv1.Deployment {
	for _, doc := range strings.Split(y, "\n---\n") {
		if strings.Contains(doc, "\nkind: Deployment\n") || strings.HasPrefix(doc, "kind: Deployment\n") {
			d := &appsv1.Deployment{}
			if err := yaml.Unmarshal([]byte(doc), d); err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
	t.Fatal("install.yaml has no Deployment")
	return nil
}
