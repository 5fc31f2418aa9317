package source

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/gittest"
)

func TestCheckoutSSH(t *testing.T) {
	srv := gittest.New(t, "", "")
	repo := srv.NewRepo("app", "main")
	c1 := repo.Commit("one", map[string]string{"a.yaml": "a: 1\n"})
	sshSrv := srv.ServeSSH(t)
	ctx := context.Background()
	auth := &Auth{Identity: sshSrv.ClientKey, KnownHosts: sshSrv.KnownHosts}
	c, err := Checkout(ctx, sshSrv.URL(repo), Ref{Branch: "main"}, auth, artifact.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Hash != c1 || string(c.Files["a.yaml"].Data) != "a: 1\n" {
		t.Fatalf("got %s", c.Hash)
	}
	// A key the server does not know.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	blk, _ := ssh.MarshalPrivateKey(other, "")
	if _, err := Checkout(ctx, sshSrv.URL(repo), Ref{Branch: "main"}, &Auth{Identity: pem.EncodeToMemory(blk), KnownHosts: sshSrv.KnownHosts}, artifact.Limits{}); !errors.Is(err, ErrAuth) {
		t.Fatalf("unknown key: %v", err)
	}
	// A host key that is not in known_hosts.
	other2 := srv.ServeSSH(t)
	if _, err := Checkout(ctx, sshSrv.URL(repo), Ref{Branch: "main"}, &Auth{Identity: sshSrv.ClientKey, KnownHosts: other2.KnownHosts}, artifact.Limits{}); err == nil {
		t.Fatal("unknown host key accepted")
	}
	// known_hosts is required.
	if _, err := Checkout(ctx, sshSrv.URL(repo), Ref{Branch: "main"}, &Auth{Identity: sshSrv.ClientKey}, artifact.Limits{}); !errors.Is(err, ErrInvalidSecret) {
		t.Fatalf("missing known_hosts: %v", err)
	}
}
