package build

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/keys"
	agekeys "github.com/lacre/lacre/keys/age"
	"github.com/lacre/lacre/sopsfile"
)

// buildWithin runs Build with a deadline: a hostile input must end, with
// an error or not, in bounded time.
func buildWithin(t *testing.T, files artifact.Files, opts Options) (*Result, error) {
	t.Helper()
	type out struct {
		res *Result
		err error
	}
	ch := make(chan out, 1)
	go func() {
		res, err := Build(context.Background(), files, opts)
		ch <- out{res, err}
	}()
	select {
	case o := <-ch:
		return o.res, o.err
	case <-time.After(30 * time.Second):
		t.Fatal("build did not end in 30s")
	}
	return nil, nil
}

const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  k: v\n"

// TestHostilePaths: resources, generators and patches that point outside
// the artifact never read the real disk (the build runs on an in-memory
// file system holding only the artifact) and fail with an error.
func TestHostilePaths(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "host-secret.yaml")
	const hostCanary = "HOST-FILE-CANARY-91d2"
	os.WriteFile(secretFile, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: host\ndata:\n  k: "+hostCanary+"\n"), 0o600)
	rel := strings.Repeat("../", 20) + strings.TrimPrefix(secretFile, "/")
	for name, kust := range map[string]string{
		"resource ../":          "resources:\n  - " + rel + "\n",
		"resource absolute":     "resources:\n  - " + secretFile + "\n",
		"generator files ../":   "resources: [cm.yaml]\nconfigMapGenerator:\n  - name: g\n    files:\n      - " + rel + "\n",
		"generator files key=/": "resources: [cm.yaml]\nconfigMapGenerator:\n  - name: g\n    files:\n      - k=" + secretFile + "\n",
		"generator envs":        "resources: [cm.yaml]\nsecretGenerator:\n  - name: g\n    envs:\n      - " + secretFile + "\n",
		"patch path ../":        "resources: [cm.yaml]\npatches:\n  - path: " + rel + "\n",
		"patch path absolute":   "resources: [cm.yaml]\npatches:\n  - path: " + secretFile + "\n",
		"patchesStrategicMerge": "resources: [cm.yaml]\npatchesStrategicMerge:\n  - " + secretFile + "\n",
		"component ../":         "resources: [cm.yaml]\ncomponents:\n  - " + filepath.Dir(rel) + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			files := artifact.Files{"app/kustomization.yaml": []byte(kust), "app/cm.yaml": []byte(cm)}
			res, err := buildWithin(t, files, Options{Path: "app"})
			if err == nil {
				t.Fatalf("built %d objects", len(res.Objects))
			}
			if strings.Contains(err.Error(), hostCanary) {
				t.Fatalf("error carries the host file: %v", err)
			}
		})
	}
	// Inside the artifact, a path that climbs out of the directory and back
	// in is fine (Flux loads without restrictions inside the artifact).
	files := artifact.Files{"app/kustomization.yaml": []byte("resources:\n  - ../base/cm.yaml\n"), "base/cm.yaml": []byte(cm)}
	if _, err := buildWithin(t, files, Options{Path: "app"}); err != nil {
		t.Fatalf("a path inside the artifact: %v", err)
	}
}

// TestRemoteFilesRefused: no field of a kustomization makes the build
// reach the network (kustomize would GET http(s) URLs in resources,
// patches, generators and the other path fields).
func TestRemoteFilesRefused(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte(cm))
	}))
	defer srv.Close()
	u := srv.URL + "/x.yaml"
	for name, kust := range map[string]string{
		"resource":              "resources:\n  - " + u + "\n",
		"patch path":            "resources: [cm.yaml]\npatches:\n  - path: " + u + "\n",
		"patchesStrategicMerge": "resources: [cm.yaml]\npatchesStrategicMerge:\n  - " + u + "\n",
		"patchesJson6902":       "resources: [cm.yaml]\npatchesJson6902:\n  - path: " + u + "\n    target: {version: v1, kind: ConfigMap, name: cm}\n",
		"generator files":       "resources: [cm.yaml]\nconfigMapGenerator:\n  - name: g\n    files:\n      - " + u + "\n",
		"generator files key=":  "resources: [cm.yaml]\nconfigMapGenerator:\n  - name: g\n    files:\n      - k=" + u + "\n",
		"generator envs":        "resources: [cm.yaml]\nconfigMapGenerator:\n  - name: g\n    envs:\n      - " + u + "\n",
		"generator env":         "resources: [cm.yaml]\nconfigMapGenerator:\n  - name: g\n    env: " + u + "\n",
		"configurations":        "resources: [cm.yaml]\nconfigurations:\n  - " + u + "\n",
		"crds":                  "resources: [cm.yaml]\ncrds:\n  - " + u + "\n",
		"transformers":          "resources: [cm.yaml]\ntransformers:\n  - " + u + "\n",
		"generators":            "resources: [cm.yaml]\ngenerators:\n  - " + u + "\n",
		"openapi":               "resources: [cm.yaml]\nopenapi:\n  path: " + u + "\n",
		"replacements":          "resources: [cm.yaml]\nreplacements:\n  - path: " + u + "\n",
		"nested":                "resources: [sub]\n",
	} {
		t.Run(name, func(t *testing.T) {
			files := artifact.Files{"app/kustomization.yaml": []byte(kust), "app/cm.yaml": []byte(cm),
				"app/sub/kustomization.yaml": []byte("resources: [../cm.yaml]\npatches:\n  - path: " + u + "\n")}
			before := hits.Load()
			_, err := buildWithin(t, files, Options{Path: "app"})
			if hits.Load() != before {
				t.Fatalf("the build fetched %s (err %v)", u, err)
			}
			if err == nil {
				t.Fatal("built")
			}
		})
	}
}

// TestSelfInclusion: kustomizations that include themselves or each other
// end with an error.
func TestSelfInclusion(t *testing.T) {
	for name, files := range map[string]artifact.Files{
		"dot":       {"app/kustomization.yaml": []byte("resources:\n  - .\n")},
		"own path":  {"app/kustomization.yaml": []byte("resources:\n  - ../app\n")},
		"cycle":     {"app/kustomization.yaml": []byte("resources:\n  - ../b\n"), "b/kustomization.yaml": []byte("resources:\n  - ../app\n")},
		"component": {"app/kustomization.yaml": []byte("components:\n  - .\n")},
		"file":      {"app/kustomization.yaml": []byte("resources:\n  - kustomization.yaml\n")},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := buildWithin(t, files, Options{Path: "app"}); err == nil {
				t.Fatal("built")
			}
		})
	}
}

// billionLaughs is a YAML document whose aliases expand to 10^9 nodes.
func billionLaughs(head string) string {
	var b strings.Builder
	b.WriteString(head)
	b.WriteString("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		b.WriteString(n + ": &" + n + " [")
		for i := range 10 {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("*" + prev)
		}
		b.WriteString("]\n")
		prev = n
	}
	return b.String()
}

// TestBillionLaughs: alias bombs in a manifest, in a kustomization and in
// a SOPS file end quickly with an error and bounded memory.
func TestBillionLaughs(t *testing.T) {
	id, _ := testKey(t)
	manifest := billionLaughs("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\n")
	sopsDoc := billionLaughs("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\nsops:\n  mac: ENC[AES256_GCM,data:x,iv:x,tag:x,type:str]\n  version: 3.13.3\n")
	for name, files := range map[string]artifact.Files{
		"manifest":          {"app/kustomization.yaml": []byte("resources: [lol.yaml]\n"), "app/lol.yaml": []byte(manifest)},
		"generated":         {"app/lol.yaml": []byte(manifest)},
		"kustomization":     {"app/kustomization.yaml": []byte(billionLaughs("resources: []\n"))},
		"sops file":         {"app/kustomization.yaml": []byte("resources: [lol.yaml]\n"), "app/lol.yaml": []byte(sopsDoc)},
		"sops file in data": {"app/kustomization.yaml": []byte("resources: [s.yaml]\n"), "app/s.yaml": []byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  x.yaml: " + b64(sopsDoc) + "\n")},
	} {
		t.Run(name, func(t *testing.T) {
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := buildWithin(t, files, Options{Path: "app", Decrypt: true, Identities: []keys.Identity{id}})
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if err == nil && name != "generated" {
				t.Fatal("built")
			}
			if err != nil && !errors.Is(err, ErrAliasBomb) {
				t.Errorf("got %v, want %v", err, ErrAliasBomb)
			}
			if grown := after.TotalAlloc - before.TotalAlloc; grown > 2<<30 {
				t.Fatalf("allocated %d MiB", grown>>20)
			}
			t.Logf("%v", err)
		})
	}
}

// TestOversizedEncryptedFile: a 100 MB encrypted file is refused by the
// size bound before any parsing, with a message that names the file.
func TestOversizedEncryptedFile(t *testing.T) {
	id, _ := testKey(t)
	big := make([]byte, 100<<20)
	copy(big, "sops:\n    mac: ENC[AES256_GCM,data:x,iv:x,tag:x,type:str]\nk: ")
	for i := 64; i < len(big); i++ {
		big[i] = 'a'
	}
	files := artifact.Files{"app/kustomization.yaml": []byte("resources: [big.yaml]\n"), "app/big.yaml": big}
	start := time.Now()
	_, err := buildWithin(t, files, Options{Path: "app", Decrypt: true, Identities: []keys.Identity{id}})
	var fe *FileError
	if !errors.As(err, &fe) || fe.Path != "app/big.yaml" || !strings.Contains(err.Error(), "larger than 5 MiB") {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v", d)
	}
}

func testKey(t *testing.T) (keys.Identity, keys.Recipient) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	ours, _ := agekeys.ParseIdentity(id.String())
	r, _ := agekeys.ParseRecipient(id.Recipient().String())
	return ours, r
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestInvalidUTF8EnvFile: kustomize's error for an env file line with
// invalid UTF-8 quotes the line (the decrypted value); the build names the
// file and line instead (issue 17 item 5), encrypted or not.
func TestInvalidUTF8EnvFile(t *testing.T) {
	id, r := testKey(t)
	const env = "A=ok\nPASSWORD=" + canary + "\xff\xfe\n"
	for name, data := range map[string][]byte{
		"encrypted": encrypt(t, r, "app.env", env, sopsfile.Rules{}),
		"plain":     []byte(env),
	} {
		files := artifact.Files{"app/kustomization.yaml": []byte("secretGenerator:\n  - name: g\n    envs: [app.env]\n"), "app/app.env": data}
		_, err := buildWithin(t, files, Options{Path: "app", Decrypt: true, Identities: []keys.Identity{id}})
		var fe *FileError
		if !errors.As(err, &fe) || fe.Path != "app/app.env" || !errors.Is(err, ErrInvalidUTF8) || !strings.Contains(err.Error(), "line 2 ") || strings.Contains(err.Error(), canary) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

// TestInvalidUTF8EachStore: a value with invalid UTF-8, encrypted in each
// store that accepts it, builds or fails without the value in the error.
func TestInvalidUTF8EachStore(t *testing.T) {
	id, r := testKey(t)
	bad := canary + "\xff\xfe"
	for name, tc := range map[string]struct{ file, plain, kust string }{
		"json resource": {"cm.json", `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "` + bad + `"}}`, "resources: [cm.json]\n"},
		"dotenv envs":   {"app.env", "K=" + bad + "\n", "secretGenerator:\n  - name: g\n    envs: [app.env]\n"},
		"ini files":     {"app.ini", "[s]\nk = " + bad + "\n", "secretGenerator:\n  - name: g\n    files: [app.ini]\n"},
		"binary files":  {"app.bin", bad, "secretGenerator:\n  - name: g\n    files: [app.bin]\n"},
	} {
		files := artifact.Files{"app/kustomization.yaml": []byte(tc.kust), "app/" + tc.file: encrypt(t, r, tc.file, tc.plain, sopsfile.Rules{})}
		_, err := buildWithin(t, files, Options{Path: "app", Decrypt: true, Identities: []keys.Identity{id}})
		if err != nil && strings.Contains(err.Error(), canary) {
			t.Errorf("%s: %v", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
}
