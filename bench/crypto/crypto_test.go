// Package cryptobench compares lacre with the real sops CLI on the same
// files, in the same run. Run it with ../crypto.sh, which prints the ratios.
package cryptobench

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

var (
	work     string
	lacreBin string
	sopsBin  string
	keyFile  string
	pubKey   string
	bigPlain string // ~1 MB YAML, ~12,000 values
	bigEnc   string // the same, encrypted by sops
	smallDir string // 100 Secrets encrypted by sops
	smallArg []string
)

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		// Only benchmarks live here; the setup is too slow for go test ./...
		os.Exit(m.Run())
	}
	code := func() int {
		var err error
		work, err = os.MkdirTemp("", "lacre-bench-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(work)
		if err := setup(); err != nil {
			fmt.Fprintln(os.Stderr, "bench setup:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

func findSops() string {
	if p, err := exec.LookPath("sops"); err == nil {
		return p
	}
	out, _ := exec.Command("go", "env", "GOPATH").Output()
	p := filepath.Join(strings.TrimSpace(string(out)), "bin", "sops")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

func run(env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			peakRSS.Store(max(peakRSS.Load(), ru.Maxrss)) // KiB on Linux
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s %v: %v: %s", name, args, err, stderr.String())
	}
	return out, nil
}

// peakRSS is the largest peak RSS (KiB) of a child process since the last
// reportRSS.
var peakRSS atomic.Int64

// reportRSS adds the peak RSS of the processes the benchmark ran.
func reportRSS(b *testing.B) {
	b.ReportMetric(float64(peakRSS.Swap(0))/1024, "peak-RSS-MB")
}

func setup() error {
	sopsBin = findSops()
	lacreBin = filepath.Join(work, "lacre")
	// Static, as release builds are (CGO_ENABLED=0: no dynamic loader at
	// start).
	if _, err := run([]string{"CGO_ENABLED=0"}, "go", "build", "-trimpath", "-o", lacreBin, "github.com/lacre/lacre/cmd/lacre"); err != nil {
		return err
	}
	keyFile = filepath.Join(work, "key.txt")
	if _, err := run(nil, lacreBin, "keygen", "-o", keyFile); err != nil {
		return err
	}
	data, _ := os.ReadFile(keyFile)
	for _, l := range strings.Split(string(data), "\n") {
		if k, ok := strings.CutPrefix(l, "# public key: "); ok {
			pubKey = k
		}
	}

	// ~1 MB: 1,000 services with 12 values each.
	var sb strings.Builder
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&sb, "service%04d:\n", i)
		fmt.Fprintf(&sb, "    host: host-%d.internal.example.com\n    port: %d\n    enabled: true\n    ratio: 0.%d\n", i, 1000+i, i)
		fmt.Fprintf(&sb, "    user: user%d\n    password: %s\n    token: %s\n", i, strings.Repeat("p", 40), strings.Repeat("t", 300))
		fmt.Fprintf(&sb, "    tags:\n        - a%d\n        - b%d\n        - c%d\n", i, i, i)
		fmt.Fprintf(&sb, "    note: %s\n    url: https://example.com/%d/path\n", strings.Repeat("n", 200), i)
	}
	bigPlain = filepath.Join(work, "big.yaml")
	if err := os.WriteFile(bigPlain, []byte(sb.String()), 0o600); err != nil {
		return err
	}
	encryptor := lacreBin
	if sopsBin != "" {
		encryptor = sopsBin
	}
	out, err := run(nil, encryptor, "encrypt", "--age", pubKey, bigPlain)
	if err != nil {
		return err
	}
	bigEnc = filepath.Join(work, "big.enc.yaml")
	if err := os.WriteFile(bigEnc, out, 0o600); err != nil {
		return err
	}

	smallDir = filepath.Join(work, "small")
	os.MkdirAll(smallDir, 0o700)
	for i := 0; i < 100; i++ {
		p := filepath.Join(smallDir, fmt.Sprintf("secret%03d.yaml", i))
		s := fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n    name: s%d\n    namespace: app\ntype: Opaque\nstringData:\n    username: user%d\n    password: pass-%d-%s\n", i, i, i, strings.Repeat("x", 24))
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			return err
		}
		out, err := run(nil, encryptor, "encrypt", "--age", pubKey, "--encrypted-regex", "^(data|stringData)$", p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(p, out, 0o600); err != nil {
			return err
		}
		smallArg = append(smallArg, p)
	}
	return nil
}

func keyEnv() []string {
	return []string{"SOPS_AGE_KEY_FILE=" + keyFile, "SOPS_DISABLE_VERSION_CHECK=1"}
}

func needSops(b *testing.B) {
	if sopsBin == "" {
		b.Skip("the sops CLI is not installed")
	}
}

func bench(b *testing.B, name string, args ...string) {
	b.Helper()
	env := keyEnv()
	peakRSS.Store(0)
	for b.Loop() {
		if _, err := run(env, name, args...); err != nil {
			b.Fatal(err)
		}
	}
	reportRSS(b)
}

func BenchmarkDecrypt1MB(b *testing.B) {
	b.Run("tool=lacre", func(b *testing.B) { bench(b, lacreBin, "decrypt", bigEnc) })
	b.Run("tool=sops", func(b *testing.B) { needSops(b); bench(b, sopsBin, "decrypt", bigEnc) })
}

func BenchmarkEncrypt1MB(b *testing.B) {
	b.Run("tool=lacre", func(b *testing.B) { bench(b, lacreBin, "encrypt", "--age", pubKey, bigPlain) })
	b.Run("tool=sops", func(b *testing.B) { needSops(b); bench(b, sopsBin, "encrypt", "--age", pubKey, bigPlain) })
}

// BenchmarkDecrypt100Files: lacre decrypts the 100 files in one call; sops
// needs one process per file.
func BenchmarkDecrypt100Files(b *testing.B) {
	b.Run("tool=lacre", func(b *testing.B) { bench(b, lacreBin, append([]string{"decrypt"}, smallArg...)...) })
	b.Run("tool=sops", func(b *testing.B) {
		needSops(b)
		env := keyEnv()
		peakRSS.Store(0)
		defer reportRSS(b)
		for b.Loop() {
			for _, f := range smallArg {
				if _, err := run(env, sopsBin, "decrypt", f); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkDecrypt1000Files: a directory of 1,000 Secret files; lacre in
// one call, sops one process per file (bench/crypto.sh runs this one once,
// sops takes about a minute per pass).
func BenchmarkDecrypt1000Files(b *testing.B) {
	dir := filepath.Join(work, "thousand")
	var files []string
	if _, err := os.Stat(dir); err != nil {
		os.MkdirAll(dir, 0o700)
		for i := range 1000 {
			src, err := os.ReadFile(smallArg[i%len(smallArg)])
			if err != nil {
				b.Fatal(err)
			}
			p := filepath.Join(dir, fmt.Sprintf("secret%04d.yaml", i))
			if err := os.WriteFile(p, src, 0o600); err != nil {
				b.Fatal(err)
			}
		}
	}
	for i := range 1000 {
		files = append(files, filepath.Join(dir, fmt.Sprintf("secret%04d.yaml", i)))
	}
	b.Run("tool=lacre", func(b *testing.B) { bench(b, lacreBin, append([]string{"decrypt"}, files...)...) })
	b.Run("tool=sops", func(b *testing.B) {
		needSops(b)
		env := keyEnv()
		peakRSS.Store(0)
		for b.Loop() {
			for _, f := range files {
				if _, err := run(env, sopsBin, "decrypt", f); err != nil {
					b.Fatal(err)
				}
			}
		}
		reportRSS(b)
	})
}

func BenchmarkEncrypt100Files(b *testing.B) {
	plainDir := filepath.Join(work, "plain100")
	os.MkdirAll(plainDir, 0o700)
	var files []string
	for i := 0; i < 100; i++ {
		p := filepath.Join(plainDir, fmt.Sprintf("s%03d.yaml", i))
		os.WriteFile(p, []byte(fmt.Sprintf("stringData:\n    password: p%d\n", i)), 0o600)
		files = append(files, p)
	}
	b.Run("tool=lacre", func(b *testing.B) {
		for b.Loop() {
			for _, f := range files {
				// Re-create the plaintext: encryption is in place.
				os.WriteFile(f, []byte("stringData:\n    password: p\n"), 0o600)
			}
			if _, err := run(keyEnv(), lacreBin, append([]string{"encrypt", "-i", "--age", pubKey}, files...)...); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("tool=sops", func(b *testing.B) {
		needSops(b)
		for b.Loop() {
			for _, f := range files {
				os.WriteFile(f, []byte("stringData:\n    password: p\n"), 0o600)
				if _, err := run(keyEnv(), sopsBin, "encrypt", "-i", "--age", pubKey, f); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
