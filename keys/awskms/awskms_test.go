package awskms

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/keys/awskms/kmstest"
	"github.com/lacre/lacre/keys/keystest"
)

func opts(srv *kmstest.Server) Options {
	return Options{Endpoint: srv.URL, Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKeyID, srv.SecretAccessKey, ""), Hostname: "build-host.example"}
}

func TestConformance(t *testing.T) {
	srv := kmstest.New()
	defer srv.Close()
	arn := srv.CreateKey("eu-west-1")
	r, err := NewRecipient(Key{ARN: arn, Context: map[string]string{"app": "lacre"}}, opts(srv))
	if err != nil {
		t.Fatal(err)
	}
	wrong := Options{Endpoint: srv.URL, Credentials: credentials.NewStaticCredentialsProvider("AKIAWRONGWRONGWRONG0", "wrong-secret-access-key-value", "")}
	keystest.Run(t, keystest.Backend{
		Type: keys.TypeKMS, Recipient: r, Identity: NewIdentity(opts(srv)), WrongIdentity: NewIdentity(wrong),
		Secrets: []string{srv.SecretAccessKey, "wrong-secret-access-key-value"},
	})
}

// TestWhatTheSDKSends checks the wire requests: target, key id, context,
// region from the ARN, SigV4 scope; and that a wrong context or another
// key's ARN fails.
func TestWhatTheSDKSends(t *testing.T) {
	srv := kmstest.New()
	defer srv.Close()
	arn := srv.CreateKey("ap-southeast-2")
	other := srv.CreateKey("ap-southeast-2")
	ctx := context.Background()
	ec := map[string]string{"Environment": "prod", "Team": "infra"}
	r, _ := NewRecipient(Key{ARN: arn, Context: ec}, opts(srv))
	dk := bytes.Repeat([]byte{7}, 32)
	s, err := r.Wrap(ctx, dk)
	if err != nil {
		t.Fatal(err)
	}
	last := srv.Last()
	if last.Target != "TrentService.Encrypt" || last.KeyID != arn || last.Region != "ap-southeast-2" || last.Service != "kms" ||
		last.AccessKey != srv.AccessKeyID || last.Context["Environment"] != "prod" || last.Context["Team"] != "infra" {
		t.Fatalf("encrypt request: %+v", last)
	}
	if s.Field("arn") != arn || s.Context["Team"] != "infra" || s.Field("role") != "" {
		t.Fatalf("stanza: %+v", s)
	}
	id := NewIdentity(opts(srv))
	got, err := id.Unwrap(ctx, s)
	if err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("unwrap: %v", err)
	}
	if last := srv.Last(); last.Target != "TrentService.Decrypt" || last.KeyID != arn || last.Context["Environment"] != "prod" {
		t.Fatalf("decrypt request: %+v", last)
	}

	bad := s.Clone()
	bad.Context["Environment"] = "dev"
	if _, err := id.Unwrap(ctx, bad); err == nil || !strings.Contains(err.Error(), "InvalidCiphertextException") || !strings.Contains(err.Error(), arn) {
		t.Fatalf("wrong context: %v", err)
	}
	moved := s.Clone()
	moved.Fields["arn"] = other
	if _, err := id.Unwrap(ctx, moved); err == nil || !strings.Contains(err.Error(), "IncorrectKeyException") {
		t.Fatalf("other key: %v", err)
	}

	alias := srv.CreateAlias("sops", arn)
	ra, _ := NewRecipient(Key{ARN: alias}, opts(srv))
	sa, err := ra.Wrap(ctx, dk)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := id.Unwrap(ctx, sa); err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("alias round trip: %v", err)
	}

	missing := strings.Replace(arn, "key/", "key/0", 1)
	rm, _ := NewRecipient(Key{ARN: missing}, opts(srv))
	if _, err := rm.Wrap(ctx, dk); err == nil || !strings.Contains(err.Error(), "NotFoundException") || !strings.Contains(err.Error(), `"`+missing+`"`) {
		t.Fatalf("missing key: %v", err)
	}
}

// The session name is sops@<hostname> with characters outside sops's class
// "[a-zA-Z0-9=,.@-_]" removed; "@-_" is a range, so "-" goes.
func TestAssumeRole(t *testing.T) {
	srv := kmstest.New()
	defer srv.Close()
	arn := srv.CreateKey("us-east-1")
	role := "arn:aws:iam::111122223333:role/sops-decrypt"
	k, err := ParseKey(arn + "+" + role)
	if err != nil || k.Role != role || k.ARN != arn {
		t.Fatalf("ParseKey: %+v %v", k, err)
	}
	ctx := context.Background()
	r, _ := NewRecipient(k, opts(srv))
	s, err := r.Wrap(ctx, bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if s.Field("role") != role || s.ID() != arn+"+"+role {
		t.Fatalf("stanza: %+v", s)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 || reqs[0].Target != "AssumeRole" || reqs[0].RoleARN != role || reqs[0].Session != "sops@buildhost.example" || reqs[0].Service != "sts" {
		t.Fatalf("requests: %+v", reqs)
	}
	if !strings.HasPrefix(reqs[1].AccessKey, "ASIA") {
		t.Fatalf("kms call did not use the role's credentials: %+v", reqs[1])
	}
	id := NewIdentity(opts(srv))
	if _, err := id.Unwrap(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := id.Unwrap(ctx, s); err != nil {
		t.Fatal(err)
	}
	if n := srv.AssumeRoles.Load(); n != 2 {
		t.Errorf("AssumeRole calls = %d, want 2 (one per recipient/identity, then cached)", n)
	}
	bad := s.Clone()
	bad.Fields["role"] = "not-a-role"
	if _, err := id.Unwrap(ctx, bad); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("bad role: %v", err)
	}
}

func TestParse(t *testing.T) {
	for _, bad := range []string{"", "arn:aws:s3:::bucket", "arn:aws:kms:eu-west-1:abc:key/x", "alias/sops"} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
	c, err := ParseContext("a:1,b:two:parts")
	if err != nil || c["a"] != "1" || c["b"] != "two:parts" {
		t.Fatalf("ParseContext: %v %v", c, err)
	}
	if _, err := ParseContext("nocolon"); err == nil {
		t.Error("ParseContext accepted an entry without a colon")
	}
	cp, err := ParseSecretCredentials([]byte("aws_access_key_id: AKIAXX\naws_secret_access_key: very-secret-value\n"))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := cp.Retrieve(context.Background())
	if v.AccessKeyID != "AKIAXX" || v.SecretAccessKey != "very-secret-value" {
		t.Fatalf("credentials: %+v", v.AccessKeyID)
	}
	_, err = ParseSecretCredentials([]byte(`{"aws_secret_access_key": "very-secret-value"}`))
	if err == nil || strings.Contains(err.Error(), "very-secret-value") {
		t.Fatalf("incomplete credentials: %v", err)
	}
	_, err = ParseSecretCredentials([]byte("- very-secret-value"))
	if err == nil || strings.Contains(err.Error(), "very-secret-value") {
		t.Fatalf("not a map: %v", err)
	}
}

// TestSopsInterop points the real sops CLI at the local KMS server through
// AWS_ENDPOINT_URL (read by the SDK's default configuration): lacre unwraps
// sops's stanza, and sops decrypts a file whose stanza lacre wrapped.
func TestSopsInterop(t *testing.T) {
	sops := keystest.Sops(t)
	srv := kmstest.New()
	defer srv.Close()
	arn := srv.CreateKey("eu-central-1")
	dir := t.TempDir()
	f := filepath.Join(dir, "s.yaml")
	os.WriteFile(f, []byte("password: hunter2\n"), 0o600)
	env := append(os.Environ(), "SOPS_DISABLE_VERSION_CHECK=1", "HOME="+dir,
		"AWS_ACCESS_KEY_ID="+srv.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+srv.SecretAccessKey,
		"AWS_ENDPOINT_URL="+srv.URL, "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE="+filepath.Join(dir, "none"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"))
	cmd := exec.Command(sops, "encrypt", "--kms", arn, "--encryption-context", "app:lacre,env:test", f)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sops encrypt: %v\n%s", err, out)
	}
	if last := srv.Last(); last.Target != "TrentService.Encrypt" || last.Context["app"] != "lacre" || last.Region != "eu-central-1" {
		t.Fatalf("sops's request: %+v", last)
	}
	enc := regexp.MustCompile(`(?m)^\s+enc: (\S+)$`).FindStringSubmatch(string(out))
	if enc == nil {
		t.Fatalf("no kms stanza in:\n%s", out)
	}
	ctx := context.Background()
	ec := map[string]string{"app": "lacre", "env": "test"}
	theirs := &keys.Stanza{Type: keys.TypeKMS, Enc: enc[1], Fields: map[string]string{"arn": arn}, Context: ec}
	dataKey, err := NewIdentity(opts(srv)).Unwrap(ctx, theirs)
	if err != nil || len(dataKey) != 32 {
		t.Fatalf("unwrap sops's stanza: %v", err)
	}
	r, _ := NewRecipient(Key{ARN: arn, Context: ec}, opts(srv))
	ours, err := r.Wrap(ctx, dataKey)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(f, bytes.Replace(out, []byte(enc[1]), []byte(ours.Enc), 1), 0o600)
	before := srv.Decrypts.Load()
	cmd = exec.Command(sops, "decrypt", f)
	cmd.Env = env
	plain, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(plain), "password: hunter2") {
		t.Fatalf("sops decrypt with lacre's stanza: %v\n%s", err, plain)
	}
	if srv.Decrypts.Load() == before {
		t.Fatal("sops did not call the local KMS")
	}
}
