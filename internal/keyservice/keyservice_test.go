package keyservice

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/keys/keyref"
)

func TestParseURI(t *testing.T) {
	for _, tc := range []struct{ uri, network, address, err string }{
		{"tcp://127.0.0.1:5000", "tcp", "127.0.0.1:5000", ""},
		{"unix:///tmp/sops.sock", "unix", "/tmp/sops.sock", ""},
		{"unix://rel/sops.sock", "unix", "rel/sops.sock", ""},
		{"127.0.0.1:5000", "", "", "key service"},
		{"/tmp/sops.sock", "", "", "use protocol://address"},
		{"tcp://", "", "", "no address"},
	} {
		n, a, err := ParseURI(tc.uri)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseURI(%q): %v, want an error with %q", tc.uri, err, tc.err)
			}
			continue
		}
		if err != nil || n != tc.network || a != tc.address {
			t.Errorf("ParseURI(%q) = %q, %q, %v", tc.uri, n, a, err)
		}
	}
}

func TestTemplate(t *testing.T) {
	s, err := Template(keyref.New(keys.TypeVault, "http://127.0.0.1:8200/v1/transit/keys/k"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Field("vault_address") != "http://127.0.0.1:8200" || s.Field("engine_path") != "transit" || s.Field("key_name") != "k" {
		t.Errorf("vault template: %+v", s.Fields)
	}
	s, err = Template(keyref.New(keys.TypeKMS, "arn:aws:kms:eu-west-1:111122223333:key/k+arn:aws:iam::111122223333:role/r"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Field("role") != "arn:aws:iam::111122223333:role/r" {
		t.Errorf("kms template: %+v", s.Fields)
	}
	if _, err := Template(keyref.New(keys.TypeAge, "not-a-recipient")); err == nil {
		t.Error("a malformed age recipient has a template")
	}
}

type fakeService struct {
	err   error
	calls *int
}

func (f fakeService) Encrypt(_ context.Context, k *keys.Stanza, p []byte) ([]byte, error) {
	*f.calls++
	return []byte("wrapped:" + k.Field("key_id")), f.err
}

func (f fakeService) Decrypt(context.Context, *keys.Stanza, []byte) ([]byte, error) {
	return nil, f.err
}

type failing struct{}

func (failing) Wrap(context.Context, []byte) (*keys.Stanza, error) {
	return nil, errors.New("local failed")
}

// TestRecipientOrder checks that the services are tried in order: the
// local one, then the remote ones, until one wraps.
func TestRecipientOrder(t *testing.T) {
	var n1, n2 int
	tmpl := &keys.Stanza{Type: keys.TypeHCKMS, Fields: map[string]string{"key_id": "k"}}
	r := NewRecipient(tmpl, failing{}, []Named{
		{URI: "tcp://a:1", Service: fakeService{err: errors.New("down"), calls: &n1}},
		{URI: "tcp://b:1", Service: fakeService{calls: &n2}},
	})
	s, err := r.Wrap(t.Context(), []byte("dk"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Enc != "wrapped:k" || s.CreatedAt == "" || n1 != 1 || n2 != 1 {
		t.Errorf("Wrap = %+v (calls %d, %d)", s, n1, n2)
	}
	r = NewRecipient(tmpl, failing{}, []Named{{URI: "tcp://a:1", Service: fakeService{err: errors.New("down"), calls: &n1}}})
	_, err = r.Wrap(t.Context(), []byte("dk"))
	if err == nil || !strings.Contains(err.Error(), "local failed") || !strings.Contains(err.Error(), "key service tcp://a:1: down") {
		t.Errorf("all failing: %v", err)
	}
	if _, err := NewRecipient(tmpl, nil, nil).Wrap(t.Context(), []byte("dk")); err == nil || !strings.Contains(err.Error(), "no key service") {
		t.Errorf("no service: %v", err)
	}
}
