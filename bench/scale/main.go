// Command scale measures lacre's GitOps controllers at scale against a real
// local control plane (etcd + kube-apiserver from internal/testcluster):
// one Git repository (internal/gittest) with N directories (a ConfigMap, a
// Service, a Deployment and one SOPS/age-encrypted Secret each), one
// GitRepository and N Kustomizations with decryption, lacre's controllers
// in-process.
//
//	go run ./bench/scale -n 100,500,1000
//
// Each N runs in a child process of its own, so the peak RSS reported
// (VmHWM) belongs to that run only. See docs/benchmarks.md.
//
// main.go holds the flags and the per-N child processes; runone.go one
// run's phases; repo.go the Git repository; requests.go the API request
// counter; report.go the measurements and their table.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
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
	concurrent int
	binDir     string
	timeout    time.Duration
	cpuProfile string
	memProfile string
	child      bool
	out        io.Writer
}

func main() {
	var cfg config
	nflag := flag.String("n", "100,500,1000", "comma-separated numbers of Kustomizations, one run each")
	flag.IntVar(&cfg.concurrent, "concurrent", 20, "controller --concurrent (reconciles in parallel per controller)")
	flag.StringVar(&cfg.binDir, "bindir", "", "directory of kube-apiserver and etcd (default: testcluster.DefaultBinDir)")
	flag.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "per-phase timeout")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of the initial reconcile to FILE (with one N: FILE; else FILE.N)")
	flag.StringVar(&cfg.memProfile, "memprofile", "", "write a heap profile after the initial reconcile to FILE")
	flag.BoolVar(&cfg.child, "child", false, "internal: run one N in this process")
	flag.Parse()
	for _, s := range strings.Split(*nflag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "invalid -n %q\n", s)
			os.Exit(2)
		}
		cfg.ns = append(cfg.ns, n)
	}
	cfg.out = os.Stdout
	if err := run(context.Background(), cfg); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config) error {
	if cfg.child || len(cfg.ns) == 1 && os.Getenv("LACRE_SCALE_NOFORK") != "" {
		r, err := runOne(ctx, cfg, cfg.ns[0])
		if err != nil {
			return err
		}
		r.print(cfg.out)
		return nil
	}
	// One child process per N: VmHWM is per process.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	for _, n := range cfg.ns {
		args := []string{"-child", "-n", strconv.Itoa(n), "-concurrent", strconv.Itoa(cfg.concurrent), "-timeout", cfg.timeout.String()}
		if cfg.binDir != "" {
			args = append(args, "-bindir", cfg.binDir)
		}
		for flagName, v := range map[string]string{"-cpuprofile": cfg.cpuProfile, "-memprofile": cfg.memProfile} {
			if v != "" {
				if len(cfg.ns) > 1 {
					v += "." + strconv.Itoa(n)
				}
				args = append(args, flagName, v)
			}
		}
		cmd := exec.CommandContext(ctx, self, args...)
		cmd.Stdout, cmd.Stderr = cfg.out, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("N=%d: %w", n, err)
		}
	}
	return nil
}
