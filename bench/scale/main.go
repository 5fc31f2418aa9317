// Command scale measures lacre's GitOps controllers at scale against a real
// local control plane (etcd + kube-apiserver from internal/testcluster):
// one Git repository (internal/gittest) with N directories (a ConfigMap, a
// Service, a Deployment and one SOPS/age-encrypted Secret each), one
// GitRepository and N Kustomizations with decryption, lacre's controllers
// in 1 or more processes of their own (sharded by sharding.fluxcd.io/key),
// and the floor: a minimal server-side-apply client doing the same writes.
//
//	go run ./bench/scale -n 1000,10000 -shards 1,2,4
//
// Each (N, shards) runs in a child process of its own with its own control
// plane. See docs/benchmarks.md.
//
// main.go holds the flags and the child processes; runone.go one run's
// phases; floor.go the floor; controllerproc.go the controller processes;
// repo.go the Git repository; report.go the measurements and tables.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	fluxNS = "flux-system"
	appsNS = "apps"
)

type config struct {
	ns         []int
	shards     []int
	concurrent int
	binDir     string
	timeout    time.Duration
	cpuProfile string
	child      bool
	resultFile string
	out        io.Writer
}

func main() {
	os.Exit(mainArgs(os.Args[1:]))
}

// mainArgs runs the command with args; it returns the exit code.
func mainArgs(args []string) int {
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	var cfg config
	var ctl ctlFlags
	nflag := fs.String("n", "100,500,1000", "comma-separated numbers of Kustomizations, one run each")
	sflag := fs.String("shards", "1", "comma-separated numbers of controller processes (shards), one run each per N")
	fs.IntVar(&cfg.concurrent, "concurrent", 20, "controller --concurrent (reconciles in parallel per controller and process); the floor's concurrency")
	fs.StringVar(&cfg.binDir, "bindir", "", "directory of kube-apiserver and etcd (default: testcluster.DefaultBinDir)")
	fs.DurationVar(&cfg.timeout, "timeout", 20*time.Minute, "per-phase timeout")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of the (first) controller process to FILE (FILE.N.S with several runs)")
	fs.BoolVar(&cfg.child, "child", false, "internal: run one N in this process")
	fs.StringVar(&cfg.resultFile, "result", "", "internal: write the child's result as JSON to FILE")
	controllerMode := fs.Bool("controller", false, "internal: run the controllers (a controller process)")
	fs.StringVar(&ctl.host, "host", "", "internal: API server URL of a controller process")
	fs.StringVar(&ctl.certFile, "certfile", "", "internal: client certificate of a controller process")
	fs.StringVar(&ctl.keyFile, "keyfile", "", "internal: client key of a controller process")
	fs.StringVar(&ctl.selector, "selector", "", "internal: --watch-label-selector of a controller process")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *controllerMode {
		if err := runController(cfg, ctl); err != nil {
			fmt.Fprintln(os.Stderr, "scale controller:", err)
			return 1
		}
		return 0
	}
	var err error
	if cfg.ns, err = ints(*nflag); err == nil {
		cfg.shards, err = ints(*sflag)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cfg.out = os.Stdout
	if err := run(context.Background(), cfg); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		return 1
	}
	return 0
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("invalid number %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(ctx context.Context, cfg config) error {
	if cfg.child {
		r, err := runOne(ctx, cfg, cfg.ns[0], cfg.shards[0])
		if err != nil {
			return err
		}
		r.print(cfg.out)
		if cfg.resultFile != "" {
			b, err := json.Marshal(r)
			if err != nil {
				return err
			}
			return os.WriteFile(cfg.resultFile, b, 0o600)
		}
		return nil
	}
	// One child process per run: a control plane and peak RSS of its own.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "lacre-scale-results-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var results []*result
	for _, shards := range cfg.shards {
		for _, n := range cfg.ns {
			r, err := runChild(ctx, cfg, self, dir, n, shards)
			if err != nil {
				return fmt.Errorf("N=%d, %d shard(s): %w", n, shards, err)
			}
			results = append(results, r)
		}
	}
	if len(results) > 1 {
		printGrowth(cfg.out, results)
	}
	return nil
}

// runChild runs one (N, shards) in a child process and reads its result.
func runChild(ctx context.Context, cfg config, self, dir string, n, shards int) (*result, error) {
	resFile := filepath.Join(dir, fmt.Sprintf("%d-%d.json", n, shards))
	args := []string{"-child", "-n", strconv.Itoa(n), "-shards", strconv.Itoa(shards), "-concurrent", strconv.Itoa(cfg.concurrent),
		"-timeout", cfg.timeout.String(), "-result", resFile}
	if cfg.binDir != "" {
		args = append(args, "-bindir", cfg.binDir)
	}
	if v := cfg.cpuProfile; v != "" {
		if len(cfg.ns)*len(cfg.shards) > 1 {
			v += fmt.Sprintf(".%d.%d", n, shards)
		}
		args = append(args, "-cpuprofile", v)
	}
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Stdout, cmd.Stderr = cfg.out, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(resFile)
	if err != nil {
		return nil, err
	}
	r := &result{}
	return r, json.Unmarshal(b, r)
}
