package age

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/keys/keystest"
)

func x25519(t *testing.T) (*Identity, *Recipient, string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	ours, err := ParseIdentity(id.String())
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseRecipient(id.Recipient().String())
	if err != nil {
		t.Fatal(err)
	}
	return ours, r, id.String()
}

func TestConformanceX25519(t *testing.T) {
	id, r, secret := x25519(t)
	wrong, _, _ := x25519(t)
	keystest.Run(t, keystest.Backend{Type: keys.TypeAge, Recipient: r, Identity: id, WrongIdentity: wrong, WrongIsIncorrect: true, Secrets: []string{secret}})
}

func TestConformancePQ(t *testing.T) {
	hid, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Skip("no hybrid identities in this age version")
	}
	id, err := ParseIdentity(hid.String())
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseRecipient(hid.Recipient().String())
	if err != nil {
		t.Fatal(err)
	}
	other, _ := age.GenerateHybridIdentity()
	wrong, _ := ParseIdentity(other.String())
	keystest.Run(t, keystest.Backend{Type: keys.TypeAge, Recipient: r, Identity: id, WrongIdentity: wrong, WrongIsIncorrect: true, Secrets: []string{hid.String()}})
}

func TestConformanceSSH(t *testing.T) {
	gen := func() (*Identity, string, []byte) {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		blk, err := ssh.MarshalPrivateKey(priv, "")
		if err != nil {
			t.Fatal(err)
		}
		pemBytes := pem.EncodeToMemory(blk)
		id, err := ParseSSHIdentity(pemBytes)
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := ssh.NewPublicKey(priv.Public())
		return id, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))), pemBytes
	}
	id, pub, pemBytes := gen()
	wrong, _, _ := gen()
	r, err := ParseRecipient(pub)
	if err != nil {
		t.Fatal(err)
	}
	keystest.Run(t, keystest.Backend{Type: keys.TypeAge, Recipient: r, Identity: id, WrongIdentity: wrong, WrongIsIncorrect: true, Secrets: []string{string(pemBytes)}})
}

func TestNoSecretInFormatting(t *testing.T) {
	id, _, secret := x25519(t)
	for _, s := range []string{fmt.Sprint(id), fmt.Sprintf("%v %+v %#v", id, id, id), keys.Describe(id)} {
		if strings.Contains(s, secret) || strings.Contains(s, "AGE-SECRET-KEY") {
			t.Fatalf("identity formatting leaks the secret: %s", s)
		}
	}
	_, err := ParseIdentities(strings.NewReader("# c\n\n" + secret + "x\n"))
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("malformed identity error: %v", err)
	}
}

func TestParseIdentities(t *testing.T) {
	_, _, s1 := x25519(t)
	_, _, s2 := x25519(t)
	ids, err := ParseIdentities(strings.NewReader("# created: x\n# public key: age1...\n" + s1 + "\n\n" + s2 + "\n"))
	if err != nil || len(ids) != 2 {
		t.Fatalf("got %d, %v", len(ids), err)
	}
	for _, bad := range []string{"", "# only comments\n", "AGE-PLUGIN-YUBIKEY-1XYZ\n", "garbage\n"} {
		if _, err := ParseIdentities(strings.NewReader(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	for _, bad := range []string{"", "age1xyz", "age1pq1xyz", "ssh-ed25519 AAAA", "nope"} {
		if _, err := ParseRecipient(bad); err == nil {
			t.Errorf("recipient %q parsed", bad)
		}
	}
}

func TestInteropWithAgeCLIAndSops(t *testing.T) {
	if _, err := exec.LookPath("age"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("age is required in CI")
		}
		t.Skip("age is not installed")
	}
	key, err := os.ReadFile("../../sops/stores/yaml/testdata/test.agekey")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := ParseIdentities(bytes.NewReader(key))
	if err != nil {
		t.Fatal(err)
	}
	id := ids[0].(*Identity)
	// Ours → the age CLI.
	r, _ := ParseRecipient(id.Recipient())
	dataKey := make([]byte, 32)
	rand.Read(dataKey)
	s, err := r.Wrap(context.Background(), dataKey)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("age", "-d", "-i", "../../sops/stores/yaml/testdata/test.agekey")
	cmd.Stdin = strings.NewReader(s.Enc)
	out, err := cmd.Output()
	if err != nil || !bytes.Equal(out, dataKey) {
		t.Fatalf("age -d of our stanza: %v", err)
	}
	// sops's stanza → ours: the enc block of a file the real sops wrote.
	enc, _ := os.ReadFile("../../sops/stores/yaml/testdata/sops.enc.yaml")
	i := strings.Index(string(enc), "-----BEGIN AGE ENCRYPTED FILE-----")
	j := strings.Index(string(enc), "-----END AGE ENCRYPTED FILE-----")
	var lines []string
	for _, l := range strings.Split(string(enc[i:j+len("-----END AGE ENCRYPTED FILE-----")]), "\n") {
		lines = append(lines, strings.TrimSpace(l))
	}
	st := &keys.Stanza{Type: keys.TypeAge, Fields: map[string]string{"recipient": id.Recipient()}, Enc: strings.Join(lines, "\n") + "\n"}
	got, err := id.Unwrap(context.Background(), st)
	if err != nil || len(got) != 32 {
		t.Fatalf("unwrap sops's stanza: %v", err)
	}
	cmd = exec.Command("age", "-d", "-i", "../../sops/stores/yaml/testdata/test.agekey")
	cmd.Stdin = strings.NewReader(st.Enc)
	want, _ := cmd.Output()
	if !bytes.Equal(got, want) {
		t.Fatal("our unwrap differs from age -d")
	}
}

func TestUnwrapGroupsReport(t *testing.T) {
	id1, r1, secret1 := x25519(t)
	_, r2, _ := x25519(t)
	wrong, _, _ := x25519(t)
	ctx := context.Background()
	dataKey := make([]byte, 32)
	rand.Read(dataKey)
	groups, th, err := keys.WrapGroups(ctx, dataKey, [][]keys.Recipient{{r1}, {r2}, {r1, r2}}, 2)
	if err != nil || th != 2 {
		t.Fatal(err, th)
	}
	got, err := keys.UnwrapGroups(ctx, groups, th, []keys.Identity{id1}, nil)
	if err != nil || !bytes.Equal(got, dataKey) {
		t.Fatalf("2 of 3 groups: %v", err)
	}
	_, err = keys.UnwrapGroups(ctx, groups, 3, []keys.Identity{id1}, nil)
	if !errors.Is(err, keys.ErrNoKey) {
		t.Fatalf("threshold 3 with 2 groups: %v", err)
	}
	_, err = keys.UnwrapGroups(ctx, groups[:1], 0, []keys.Identity{wrong}, nil)
	var nk *keys.NoKeyError
	if !errors.As(err, &nk) {
		t.Fatalf("got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"key group 0", r1.String(), "none of the available identities matches", wrong.Recipient()} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, secret1) || strings.Contains(msg, "AGE-SECRET") {
		t.Fatalf("error leaks a secret:\n%s", msg)
	}
	_, err = keys.UnwrapGroups(ctx, groups[:1], 0, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "no identity of this type") {
		t.Fatalf("no identities: %v", err)
	}
}

func FuzzParseIdentities(f *testing.F) {
	f.Add("AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\n")
	f.Add("# comment\n\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, err := ParseIdentities(strings.NewReader(s))
		if err != nil && strings.Contains(s, "AGE-SECRET-KEY-1") && len(s) > 30 && strings.Contains(err.Error(), s) {
			t.Fatal("error echoes its input")
		}
	})
}

func FuzzParseRecipient(f *testing.F) {
	f.Add("age1vet6d2x435cqjxyau54cuyajxuathkm3mz9m2zyk2evr7l3ha4wqgq5agh")
	f.Add("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE")
	f.Fuzz(func(t *testing.T, s string) { _, _ = ParseRecipient(s) })
}
