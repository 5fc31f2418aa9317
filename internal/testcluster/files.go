package testcluster

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// writeFileAtomic writes b to path with mode 0600: a temporary file in the
// same directory, synced, then renamed over path.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// WriteFileAtomic writes b to path (mode 0600) atomically.
func WriteFileAtomic(path string, b []byte) error { return writeFileAtomic(path, b) }

// encryptionConfig is a kube-apiserver EncryptionConfiguration: Secrets
// encrypted with secretbox (XSalsa20-Poly1305) under one 32-byte key;
// identity last, so that anything stored before can still be read.
const encryptionConfig = `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources:
      - secrets
    providers:
      - secretbox:
          keys:
            - name: %s
              secret: %s
      - identity: {}
`

// WriteEncryptionConfig makes sure path holds an EncryptionConfiguration
// with a random 32-byte secretbox key (mode 0600). An existing file is kept
// as it is: its key decrypts what etcd already holds.
func WriteEncryptionConfig(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	return writeFileAtomic(path, fmt.Appendf(nil, encryptionConfig, "lacre-dev", base64.StdEncoding.EncodeToString(key)))
}

// Alive reports whether process pid exists and is not a zombie (a zombie
// has exited; only its parent has not collected it yet).
func Alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // no /proc: trust kill(0)
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
