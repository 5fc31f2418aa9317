package bucket

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/source/bucket/buckettest"
)

const ak, sk = "AKIALACRETEST", "lacre-test-secret-key"

func seeded(t *testing.T, opts buckettest.Options) (*buckettest.Server, Config) {
	s := buckettest.New(t, opts)
	s.CreateBucket(t, "manifests")
	s.Put(t, "manifests", "apps/app.yaml", []byte("kind: ConfigMap\n"))
	s.Put(t, "manifests", "apps/secret.enc.yaml", []byte("sops: {}\n"))
	s.Put(t, "manifests", "apps/notes.md", []byte("notes\n"))
	s.Put(t, "manifests", "other/x.yaml", []byte("x: 1\n"))
	s.Put(t, "manifests", ".sourceignore", []byte("*.md\n"))
	return s, Config{Endpoint: s.Endpoint, BucketName: "manifests", Insecure: !opts.TLS, Credentials: &Credentials{AccessKey: ak, SecretKey: sk}}
}

// fluxRevision is the revision as Flux's index digester writes it.
func fluxRevision(idx map[string]string) string {
	keys := make([]string, 0, len(idx))
	for k := range idx {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s %s\n", k, idx[k])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// TestFetchLikeFlux: prefix, the bucket's .sourceignore, spec.ignore
// taking precedence, the revision as Flux computes it, the files by key.
func TestFetchLikeFlux(t *testing.T) {
	_, cfg := seeded(t, buckettest.Options{AccessKey: ak, SecretKey: sk})
	cfg.Prefix = "apps/"
	ignore := "!notes.md\n*.enc.yaml\n"
	cfg.Ignore = &ignore
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	x, err := c.Index(ctx, artifact.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for k, o := range x.objects {
		want[k] = o.ETag
	}
	if len(want) != 2 || want["apps/app.yaml"] == "" || want["apps/notes.md"] == "" {
		t.Fatalf("index %v, want apps/app.yaml and apps/notes.md", want)
	}
	if got := x.Revision(); got != fluxRevision(want) || !strings.HasPrefix(got, "sha256:") {
		t.Errorf("revision %s, want %s", got, fluxRevision(want))
	}
	files, err := c.Fetch(ctx, x, artifact.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(files["apps/app.yaml"].Data) != "kind: ConfigMap\n" || files[".sourceignore"] == nil || len(files) != 3 {
		t.Errorf("files %v", files)
	}
}

// TestWrongCredentials: S3 refuses the signature; the error says so and
// names the bucket, without the secret.
func TestWrongCredentials(t *testing.T) {
	_, cfg := seeded(t, buckettest.Options{AccessKey: ak, SecretKey: sk})
	cfg.Credentials = &Credentials{AccessKey: ak, SecretKey: "not-the-secret"}
	c, _ := New(cfg)
	_, err := c.Index(context.Background(), artifact.Limits{})
	if err == nil || !strings.Contains(err.Error(), "'manifests'") || strings.Contains(err.Error(), "not-the-secret") {
		t.Fatalf("Index with a wrong secret key: %v", err)
	}
	t.Log(err)
}

// TestTooLarge: more objects, a larger object or more bytes than the
// limits are refused from the listing, before any download.
func TestTooLarge(t *testing.T) {
	_, cfg := seeded(t, buckettest.Options{})
	cfg.Credentials = nil
	c, _ := New(cfg)
	for _, lim := range []artifact.Limits{{MaxFiles: 2}, {MaxFileSize: 5}, {MaxTotalSize: 20}} {
		if _, err := c.Index(context.Background(), lim); !errors.Is(err, artifact.ErrTooLarge) {
			t.Errorf("%+v: %v, want ErrTooLarge", lim, err)
		}
	}
}

// TestTLS: HTTPS with the server's CA (certSecretRef's ca.crt); without
// it the certificate is refused.
func TestTLS(t *testing.T) {
	s, cfg := seeded(t, buckettest.Options{TLS: true})
	cfg.Credentials = nil
	c, _ := New(cfg)
	if _, err := c.Index(context.Background(), artifact.Limits{}); err == nil {
		t.Fatal("an unknown CA was accepted")
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CAPEM)
	cfg.TLS = &tls.Config{RootCAs: pool}
	c, _ = New(cfg)
	if _, err := c.Index(context.Background(), artifact.Limits{}); err != nil {
		t.Fatal(err)
	}
}

// TestBudget: a lease that cannot grow stops the fetch with ErrBudget.
func TestBudget(t *testing.T) {
	_, cfg := seeded(t, buckettest.Options{})
	cfg.Credentials = nil
	c, _ := New(cfg)
	ctx := context.Background()
	x, err := c.Index(ctx, artifact.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	b := artifact.NewBudget(10)
	release, err := b.Within(ctx, 0, func(l *artifact.Lease) error { return l.Grow(8) })
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	_, err = b.Within(ctx, 0, func(l *artifact.Lease) error {
		_, err := c.Fetch(ctx, x, artifact.Limits{}, l)
		if !errors.Is(err, artifact.ErrBudget) {
			t.Errorf("Fetch beyond the budget: %v, want ErrBudget", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAWSChainFromEnvironment: provider 'aws' without a secretRef takes
// the AWS SDK's default chain; here its environment link (no files, no
// instance metadata), which then signs requests S3 accepts.
func TestAWSChainFromEnvironment(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", ak)
	t.Setenv("AWS_SECRET_ACCESS_KEY", sk)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	_, cfg := seeded(t, buckettest.Options{AccessKey: ak, SecretKey: sk})
	creds, err := AWSCredentials(context.Background(), "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	if creds.AccessKey != ak || creds.SecretKey != sk {
		t.Fatalf("credentials %q, want the environment's", creds.AccessKey)
	}
	cfg.Credentials, cfg.Region = creds, "us-east-1"
	c, _ := New(cfg)
	if _, err := c.Index(context.Background(), artifact.Limits{}); err != nil {
		t.Fatal(err)
	}
}
