package cli_test

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"

	"github.com/lacre/lacre/internal/cli"
	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/cli/clitest"
	"github.com/lacre/lacre/internal/cli/cluster"
)

// objectStore is a local S3 (PUT Object, path style) and GCS (JSON API
// multipart upload) endpoint: it keeps what is uploaded.
type objectStore struct {
	mu      sync.Mutex
	objects map[string][]byte // kind://bucket/key
}

func (o *objectStore) put(k string, data []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.objects[k] = data
}

func (o *objectStore) get(k string) []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.objects[k]
}

func (o *objectStore) s3(w http.ResponseWriter, r *http.Request) {
	bucket, key, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if r.Method != http.MethodPut || !ok || !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=test-key/") {
		http.Error(w, "unsupported", http.StatusBadRequest)
		return
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.put("s3://"+bucket+"/"+key, data)
	w.Header().Set("ETag", `"1"`)
}

func (o *objectStore) gcs(w http.ResponseWriter, r *http.Request) {
	bucket, ok := strings.CutPrefix(r.URL.Path, "/upload/storage/v1/b/")
	bucket, _, _ = strings.Cut(bucket, "/")
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if r.Method != http.MethodPost || !ok || r.URL.Query().Get("uploadType") != "multipart" || err != nil {
		http.Error(w, "unsupported", http.StatusBadRequest)
		return
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	var meta struct {
		Name string `json:"name"`
	}
	part, err := mr.NextPart()
	if err == nil {
		err = json.NewDecoder(part).Decode(&meta)
	}
	var data []byte
	if err == nil {
		if part, err = mr.NextPart(); err == nil {
			data, err = io.ReadAll(io.LimitReader(part, 1<<20))
		}
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.put("gcs://"+bucket+"/"+meta.Name, data)
	w.Header().Set("Content-Type", "application/json")
	sum := binary.BigEndian.AppendUint32(nil, crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))
	json.NewEncoder(w).Encode(map[string]any{"bucket": bucket, "name": meta.Name, "size": fmt.Sprint(len(data)), "crc32c": base64.StdEncoding.EncodeToString(sum)})
}

// TestPublishObjects publishes to local S3 and GCS endpoints through the
// official SDKs: encrypted again for recreation_rule's keys (S3), or as
// the file is (GCS).
func TestPublishObjects(t *testing.T) {
	store := &objectStore{objects: map[string][]byte{}}
	s3 := httptest.NewServer(http.HandlerFunc(store.s3))
	defer s3.Close()
	gcs := httptest.NewServer(http.HandlerFunc(store.gcs))
	defer gcs.Close()
	u, _ := url.Parse(gcs.URL)
	// The SDKs read the process's environment.
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": s3.URL, "AWS_ACCESS_KEY_ID": "test-key", "AWS_SECRET_ACCESS_KEY": "test-secret",
		"AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull, "STORAGE_EMULATOR_HOST": u.Host,
	} {
		t.Setenv(k, v)
	}
	owner, _ := age.GenerateX25519Identity()
	team, _ := age.GenerateX25519Identity()
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ownerKey := write("owner.txt", owner.String()+"\n")
	teamKey := write("team.txt", team.String()+"\n")
	config := write(".sops.yaml", fmt.Sprintf(`destination_rules:
  - path_regex: 'to-s3'
    s3_bucket: bucket
    s3_prefix: pre/
    recreation_rule:
      age: %s
  - gcs_bucket: gbucket
    gcs_prefix: g/
`, team.Recipient()))
	exts := []cliapp.Extension{cli.Commands, cluster.Extend}
	run := func(key string, args ...string) (int, string, string) {
		env := clitest.Env(map[string]string{"SOPS_AGE_KEY_FILE": key, "HOME": dir}, nil)
		return clitest.Run(env, exts, append([]string{"--config", config}, args...)...)
	}
	plain := write("s.yaml", "password: hunter2\n")
	code, enc, errs := run(ownerKey, "encrypt", "--age", owner.Recipient().String(), plain)
	if code != 0 {
		t.Fatal(errs)
	}
	toS3 := write("to-s3.yaml", enc)
	toGCS := write("to-gcs.yaml", enc)

	if code, _, errs := run(ownerKey, "publish", "-y", toS3); code != 0 {
		t.Fatalf("publish to S3: %d %s", code, errs)
	}
	obj := store.get("s3://bucket/pre/to-s3.yaml")
	if len(obj) == 0 || strings.Contains(string(obj), "hunter2") || !strings.Contains(string(obj), team.Recipient().String()) || strings.Contains(string(obj), owner.Recipient().String()) {
		t.Fatalf("S3 object is not the file encrypted for the team only:\n%s", obj)
	}
	got := write("got.yaml", string(obj))
	if code, out, errs := run(teamKey, "decrypt", got); code != 0 || out != "password: hunter2\n" {
		t.Errorf("the team's key does not decrypt the S3 object: %d %q %s", code, out, errs)
	}

	if code, _, errs := run(ownerKey, "publish", "-y", "--omit-extensions", toGCS); code != 0 {
		t.Fatalf("publish to GCS: %d %s", code, errs)
	}
	if obj := store.get("gcs://gbucket/g/to-gcs"); string(obj) != enc {
		t.Errorf("GCS object is not the file as it is:\n%s", obj)
	}
}
