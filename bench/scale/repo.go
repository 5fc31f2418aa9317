package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lacre/lacre/internal/gittest"
	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/sops/formats"
	"github.com/lacre/lacre/sopsfile"
)

// appRepo is the benchmark's Git repository: apps/app-NNNN directories
// (a ConfigMap, a Service, a Deployment, an encrypted Secret each), served
// over HTTP by internal/gittest.
type appRepo struct {
	srv        *gittest.Server
	repo       *gittest.Repo
	rcpt       keys.Recipient
	initialRev string // the first commit's hash
}

// newAppRepo serves a repository with n apps under work.
func newAppRepo(ctx context.Context, work string, n int, rcpt keys.Recipient) (*appRepo, error) {
	root := filepath.Join(work, "repos")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	srv, err := gittest.Start(root, "", "")
	if err != nil {
		return nil, fmt.Errorf("git is required: %w", err)
	}
	g := &appRepo{srv: srv, rcpt: rcpt}
	if err := g.init(ctx, filepath.Join(work, "apps"), n); err != nil {
		srv.Close()
		return nil, err
	}
	return g, nil
}

// URL is the repository's clone URL.
func (g *appRepo) URL() string { return g.repo.URL() }

// Close stops the Git server.
func (g *appRepo) Close() { g.srv.Close() }

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

func (g *appRepo) init(ctx context.Context, wt string, n int) error {
	var err error
	if g.repo, err = g.srv.CreateRepo("apps", "main", wt); err != nil {
		return err
	}
	files := map[string]string{}
	for i := 0; i < n; i++ {
		name := appName(i)
		for f, content := range map[string]string{
			"kustomization.yaml": kustomizationTmpl,
			"configmap.yaml":     fmt.Sprintf(configMapTmpl, name),
			"service.yaml":       fmt.Sprintf(serviceTmpl, name),
			"deployment.yaml":    fmt.Sprintf(deploymentTmpl, name),
		} {
			files["apps/"+name+"/"+f] = content
		}
		if files["apps/"+name+"/secret.enc.yaml"], err = g.secret(ctx, i, fmt.Sprintf("initial-%d", i)); err != nil {
			return err
		}
	}
	g.initialRev, err = g.repo.Push("initial", files)
	return err
}

// secret returns app i's Secret with password, encrypted.
func (g *appRepo) secret(ctx context.Context, i int, password string) (string, error) {
	enc, err := sopsfile.Encrypt(ctx, []byte(fmt.Sprintf(secretTmpl, appName(i), password)), sopsfile.EncryptOptions{
		InputFormat: formats.YAML, OutputFormat: formats.YAML, Groups: [][]keys.Recipient{{g.rcpt}},
		Rules: sopsfile.Rules{EncryptedRegex: "^(data|stringData)$"},
	})
	return string(enc), err
}

// commitSecret changes app i's Secret in Git.
func (g *appRepo) commitSecret(ctx context.Context, i int, password string) error {
	enc, err := g.secret(ctx, i, password)
	if err != nil {
		return err
	}
	_, err = g.repo.Push("change one Secret", map[string]string{"apps/" + appName(i) + "/secret.enc.yaml": enc})
	return err
}

func appName(i int) string { return fmt.Sprintf("app-%04d", i) }

// appIndex is appName's inverse (-1 for another name).
func appIndex(name string) int {
	var i int
	if _, err := fmt.Sscanf(name, "app-%d", &i); err != nil {
		return -1
	}
	return i
}

// appDocs are app i's objects as its kustomization builds them (the
// Secret decrypted, with password), without a namespace.
func appDocs(i int, password string) []string {
	name := appName(i)
	return []string{fmt.Sprintf(configMapTmpl, name), fmt.Sprintf(serviceTmpl, name), fmt.Sprintf(deploymentTmpl, name), fmt.Sprintf(secretTmpl, name, password)}
}
