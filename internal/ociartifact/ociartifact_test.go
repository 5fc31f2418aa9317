package ociartifact

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/ociartifact/ocitest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// tree is a small source tree with an encrypted Secret.
func tree() fstest.MapFS {
	return fstest.MapFS{
		"kustomization.yaml":  {Data: []byte("resources:\n  - deploy/app.yaml\n  - secret.yaml\n")},
		"deploy/app.yaml":     {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  k: v\n")},
		"secret.yaml":         {Data: []byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]\nsops:\n  mac: ENC[AES256_GCM,data:m]\n")},
		"scripts/run.sh":      {Data: []byte("#!/bin/sh\n"), Mode: 0o755},
		".git/HEAD":           {Data: []byte("ref: refs/heads/main\n")},
		"logo.png":            {Data: []byte("png")},
		"docs/.sourceignore":  {Data: []byte("*.md\n")},
		"docs/readme.md":      {Data: []byte("# ignored by docs/.sourceignore\n")},
		"docs/kept.yaml":      {Data: []byte("a: b\n")},
		"nested/.sops.yaml":   {Data: []byte("creation_rules: []\n")}, // flux push keeps .sops.yaml
		"nested/deeper/x.yml": {Data: []byte("x: 1\n")},
	}
}

func push(t *testing.T, c *Client, ref name.Reference, fsys fstest.MapFS, meta Metadata) (layer []byte, digestRef string) {
	t.Helper()
	layer, err := BuildLayer(fsys, DefaultIgnorePaths, artifact.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	img, err := Image(layer, meta)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Push(context.Background(), ref, img)
	if err != nil {
		t.Fatal(err)
	}
	return layer, d
}

func mustRef(t *testing.T, u string) name.Reference {
	t.Helper()
	ref, err := ParseArtifactURL(u, false)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

var fixed = Metadata{Source: "https://example.com/org/repo.git", Revision: "main@sha1:0123456789abcdef0123456789abcdef01234567", Created: "2026-01-02T03:04:05Z"}

// TestPushPullRoundTrip: what is pulled is byte for byte what was pushed,
// and unpacks to the tree less the ignored files.
func TestPushPullRoundTrip(t *testing.T) {
	reg := ocitest.Start(t, ocitest.Options{})
	c := New(Options{})
	ref := mustRef(t, "oci://"+reg.Host+"/org/app:v1.0.0")
	layer, digestRef := push(t, c, ref, tree(), fixed)
	p, err := c.Pull(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.LayerData, layer) {
		t.Fatal("pulled layer differs from the pushed one")
	}
	if p.Digest != digestRef || p.Source != fixed.Source || p.Revision != fixed.Revision || p.Created != fixed.Created {
		t.Errorf("metadata %+v, pushed %s", p.Metadata, digestRef)
	}
	files, err := c.Files(p)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	want := []string{"deploy/app.yaml", "docs/.sourceignore", "docs/kept.yaml", "kustomization.yaml", "nested/.sops.yaml", "nested/deeper/x.yml", "scripts/run.sh", "secret.yaml"}
	if !reflect.DeepEqual(sorted(names), want) {
		t.Errorf("files %v, want %v", sorted(names), want)
	}
	// Pull by digest gives the same.
	byDigest, err := name.ParseReference(digestRef)
	if err != nil {
		t.Fatal(err)
	}
	if p2, err := c.Pull(context.Background(), byDigest); err != nil || !bytes.Equal(p2.LayerData, layer) {
		t.Fatalf("pull by digest: %v", err)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestFluxManifestGolden: an artifact pushed by lacre has Flux's media
// types and annotations, and for fixed files and created time the same
// manifest bytes and digest every time.
func TestFluxManifestGolden(t *testing.T) {
	reg := ocitest.Start(t, ocitest.Options{})
	c := New(Options{})
	ref := mustRef(t, "oci://"+reg.Host+"/org/app:golden")
	meta := fixed
	meta.Annotations = map[string]string{"org.opencontainers.image.description": "golden"}
	_, digestRef := push(t, c, ref, tree(), meta)
	desc, err := remote.Get(ref)
	if err != nil {
		t.Fatal(err)
	}
	m, err := desc.Image()
	if err != nil {
		t.Fatal(err)
	}
	man, err := m.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if string(desc.MediaType) != "application/vnd.oci.image.manifest.v1+json" ||
		string(man.Config.MediaType) != "application/vnd.cncf.flux.config.v1+json" ||
		len(man.Layers) != 1 || string(man.Layers[0].MediaType) != "application/vnd.cncf.flux.content.v1.tar+gzip" {
		t.Errorf("media types: manifest %s config %s layers %+v", desc.MediaType, man.Config.MediaType, man.Layers)
	}
	wantAnn := map[string]string{
		"org.opencontainers.image.created":     "2026-01-02T03:04:05Z",
		"org.opencontainers.image.source":      "https://example.com/org/repo.git",
		"org.opencontainers.image.revision":    "main@sha1:0123456789abcdef0123456789abcdef01234567",
		"org.opencontainers.image.description": "golden",
	}
	if !reflect.DeepEqual(man.Annotations, wantAnn) {
		t.Errorf("annotations %v, want %v", man.Annotations, wantAnn)
	}
	if cf, err := m.ConfigFile(); err != nil || cf.Created.UTC().Format(time.RFC3339) != fixed.Created || len(cf.RootFS.DiffIDs) != 1 {
		t.Errorf("config: created and the layer's diff ID, as flux writes them: %+v %v", cf, err)
	}
	cfg, err := m.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	got := "digest: " + strings.SplitN(digestRef, "@", 2)[1] + "\nmanifest: " + string(desc.Manifest) + "\nconfig: " + string(cfg) + "\n"
	golden := filepath.Join("testdata", "manifest.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("manifest differs from %s (go test -run TestFluxManifestGolden -update):\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
}

// TestTLSBasicAuth: a registry behind TLS and basic auth, reached with
// --creds and with a docker config.json; wrong or missing credentials are
// refused.
func TestTLSBasicAuth(t *testing.T) {
	reg := ocitest.Start(t, ocitest.Options{TLS: true, User: "flux", Password: "s3cret-pass"})
	ref := mustRef(t, "oci://"+reg.Host+"/org/app:v1")
	creds, err := Credentials("flux:s3cret-pass")
	if err != nil {
		t.Fatal(err)
	}
	c := New(Options{Auth: creds, Transport: reg.Client.Transport})
	layer, _ := push(t, c, ref, tree(), fixed)

	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("flux:s3cret-pass"))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{"`+reg.Host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	kc, err := DockerConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Options{Keychain: kc, Transport: reg.Client.Transport}).Pull(context.Background(), ref)
	if err != nil || !bytes.Equal(p.LayerData, layer) {
		t.Fatalf("pull with docker config: %v", err)
	}

	wrong, _ := Credentials("flux:wrong")
	for what, c := range map[string]*Client{
		"anonymous":       New(Options{Transport: reg.Client.Transport}),
		"wrong password":  New(Options{Auth: wrong, Transport: reg.Client.Transport}),
		"empty keychain":  New(Options{Keychain: mustKeychain(t, t.TempDir()), Transport: reg.Client.Transport}),
		"untrusted certs": New(Options{Auth: creds}),
	} {
		if _, err := c.Pull(context.Background(), ref); err == nil {
			t.Errorf("%s: pull succeeded", what)
		} else if strings.Contains(err.Error(), "s3cret-pass") {
			t.Errorf("%s: error quotes the password: %v", what, err)
		}
	}
}

func mustKeychain(t *testing.T, dir string) dockerKeychain {
	t.Helper()
	kc, err := DockerConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	return kc.(dockerKeychain)
}

// TestTamperedLayerRefused: a layer whose bytes do not match the digest
// in the manifest is refused.
func TestTamperedLayerRefused(t *testing.T) {
	reg := ocitest.Start(t, ocitest.Options{})
	c := New(Options{})
	ref := mustRef(t, "oci://"+reg.Host+"/org/app:v1")
	layer, _ := push(t, c, ref, tree(), fixed)
	reg.Tamper(artifact.Digest(layer))
	_, err := c.Pull(context.Background(), ref)
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("pull of a tampered layer: %v, want %v", err, ErrDigestMismatch)
	}
}

// TestLayerSizeBound: a layer larger than MaxLayerSize is refused from its
// descriptor, before it is fetched.
func TestLayerSizeBound(t *testing.T) {
	reg := ocitest.Start(t, ocitest.Options{})
	ref := mustRef(t, "oci://"+reg.Host+"/org/app:v1")
	layer, _ := push(t, New(Options{}), ref, tree(), fixed)
	_, err := New(Options{MaxLayerSize: int64(len(layer) - 1)}).Pull(context.Background(), ref)
	if !errors.Is(err, artifact.ErrTooLarge) {
		t.Fatalf("pull over the bound: %v", err)
	}
}

// TestTagList: tags point at the same manifest; list filters by semver
// (Flux's parsing: three parts) and regex, skips cosign tags, and lists
// in descending order.
func TestTagList(t *testing.T) {
	reg := ocitest.Start(t, ocitest.Options{})
	c := New(Options{})
	ctx := context.Background()
	ref := mustRef(t, "oci://"+reg.Host+"/org/app:v1.0.0")
	_, digestRef := push(t, c, ref, tree(), fixed)
	for _, tag := range []string{"1.1.0", "2.0.0", "1.2", "latest", "sha256-abc.sig"} {
		got, err := c.Tag(ctx, ref, tag)
		if err != nil {
			t.Fatal(err)
		}
		if want := reg.Host + "/org/app:" + tag; got != want {
			t.Errorf("tag: %s, want %s", got, want)
		}
	}
	if _, err := c.Tag(ctx, ref, "bad tag"); err == nil {
		t.Error("an invalid tag was accepted")
	}
	repo, err := ParseRepositoryURL("oci://"+reg.Host+"/org/app", false)
	if err != nil {
		t.Fatal(err)
	}
	list := func(o ListOptions) []string {
		t.Helper()
		metas, err := c.List(ctx, repo, o)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range metas {
			if m.Digest != strings.SplitN(digestRef, "@", 2)[1] || m.Revision != fixed.Revision || m.Source != fixed.Source {
				t.Errorf("%s: %+v", m.URL, m)
			}
			out = append(out, strings.TrimPrefix(m.URL, reg.Host+"/org/app:"))
		}
		return out
	}
	if got, want := list(ListOptions{}), []string{"v1.0.0", "latest", "2.0.0", "1.2", "1.1.0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("list: %v, want %v", got, want)
	}
	if got, want := list(ListOptions{SemverFilter: ">=1.0.0 <2.0.0"}), []string{"v1.0.0", "1.1.0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("list semver: %v, want %v", got, want)
	}
	if got, want := list(ListOptions{RegexFilter: "^[0-9]"}), []string{"2.0.0", "1.2", "1.1.0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("list regex: %v, want %v", got, want)
	}
	if _, err := c.List(ctx, repo, ListOptions{SemverFilter: "not a range"}); err == nil || !strings.Contains(err.Error(), "semver 'not a range' parse error") {
		t.Errorf("bad semver: %v", err)
	}
}

func TestParseArtifactURL(t *testing.T) {
	for _, u := range []string{"ghcr.io/org/app:v1", "https://ghcr.io/org/app", "oci://", "oci://ghcr.io/org/app:bad tag"} {
		if _, err := ParseArtifactURL(u, false); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
	ref, err := ParseArtifactURL("oci://ghcr.io/org/app", false)
	if err != nil || ref.Name() != "ghcr.io/org/app:latest" {
		t.Errorf("default tag: %v %v", ref, err)
	}
}

// TestBuildLayerReproducible: the layer depends on the files only.
func TestBuildLayerReproducible(t *testing.T) {
	a, err := BuildLayer(tree(), DefaultIgnorePaths, artifact.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	fs2 := tree()
	fs2["deploy/app.yaml"].Mode = 0o644 // a different umask
	b, err := BuildLayer(fs2, DefaultIgnorePaths, artifact.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("the layer depends on file modes other than the executable bit")
	}
	none, err := BuildLayer(tree(), nil, artifact.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	files, err := artifact.Extract(none, artifact.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := files[".git/HEAD"]; !ok {
		t.Error("--ignore-paths '' still left out .git/")
	}
}
