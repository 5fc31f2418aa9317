package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync/atomic"
	"syscall"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/lacre/lacre/internal/controller"
	"github.com/lacre/lacre/internal/testsupport"
)

// The controllers run in processes of their own (one per shard), so
// their peak RSS is theirs alone: this binary started with -controller.
// On SIGUSR1 a controller process prints one JSON line (ctlReport) on
// its stdout; on SIGTERM it stops.

// ctlReport is what a controller process reports.
type ctlReport struct {
	Requests    map[string]int64 `json:"requests"`
	Unwraps     int64            `json:"unwraps"`
	HeapInuseMB float64          `json:"heapInuseMB"`
}

// ctlFlags are the flags of a controller process.
type ctlFlags struct {
	host, certFile, keyFile, selector string
}

// runController is the -controller mode: lacre's manager with a counting
// transport, until SIGTERM.
func runController(cfg config, f ctlFlags) error {
	ctrl.SetLogger(logr.Discard())
	klog.SetLogger(logr.Discard())
	cert, err := os.ReadFile(f.certFile)
	if err != nil {
		return err
	}
	key, err := os.ReadFile(f.keyFile)
	if err != nil {
		return err
	}
	cnt := &testsupport.RequestCounter{}
	rc := &rest.Config{Host: f.host, TLSClientConfig: rest.TLSClientConfig{CertData: cert, KeyData: key, Insecure: true}, QPS: -1}
	rc.WrapTransport = cnt.Wrap
	mgr, err := controller.NewManager(controller.Options{Config: rc, Concurrent: cfg.concurrent, WatchSelector: f.selector})
	if err != nil {
		return err
	}
	if cfg.cpuProfile != "" {
		pf, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); pf.Close() }()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- mgr.Run(ctx) }()
	enc := json.NewEncoder(os.Stdout)
	for {
		select {
		case err := <-done:
			return err
		case s := <-sigs:
			if s == syscall.SIGTERM {
				cancel()
				<-done
				return nil
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			_ = enc.Encode(ctlReport{Requests: cnt.Snapshot(), Unwraps: mgr.Kustomizations.Unwraps(), HeapInuseMB: float64(ms.HeapInuse) / (1 << 20)})
		}
	}
}

// ctlProc is the driver's handle on one controller process.
type ctlProc struct {
	cmd      *exec.Cmd
	out      *bufio.Scanner
	exited   chan struct{} // closed when the process has ended
	err      error         // its exit status, once exited
	stopping atomic.Bool
}

// startControllers starts one controller process per shard; with more
// than one, shard k selects sharding.fluxcd.io/key=shardK.
// A process that ends before stop is reported on failed.
func startControllers(cfg config, host string, cert, key []byte, work string, shards int, failed chan<- error) ([]*ctlProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	certFile, keyFile := filepath.Join(work, "client.crt"), filepath.Join(work, "client.key")
	if err := os.WriteFile(certFile, cert, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		return nil, err
	}
	var procs []*ctlProc
	for k := 0; k < shards; k++ {
		args := []string{"-controller", "-host", host, "-certfile", certFile, "-keyfile", keyFile, "-concurrent", strconv.Itoa(cfg.concurrent)}
		if shards > 1 {
			args = append(args, "-selector", shardKey+" in ("+shardName(k)+")")
		}
		if cfg.cpuProfile != "" && k == 0 {
			args = append(args, "-cpuprofile", cfg.cpuProfile)
		}
		cmd := exec.Command(self, args...)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return procs, err
		}
		if err := cmd.Start(); err != nil {
			return procs, err
		}
		p := &ctlProc{cmd: cmd, out: bufio.NewScanner(out), exited: make(chan struct{})}
		p.out.Buffer(make([]byte, 64<<10), 1<<20)
		go func() {
			p.err = cmd.Wait()
			close(p.exited)
			if !p.stopping.Load() {
				failed <- fmt.Errorf("controller process %d ended: %v", cmd.Process.Pid, p.err)
			}
		}()
		procs = append(procs, p)
	}
	return procs, nil
}

// report asks the process for its counts.
func (p *ctlProc) report() (ctlReport, error) {
	var r ctlReport
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return r, err
	}
	if !p.out.Scan() {
		if err := p.out.Err(); err != nil {
			return r, err
		}
		return r, io.ErrUnexpectedEOF
	}
	return r, json.Unmarshal(p.out.Bytes(), &r)
}

// stop ends the process and waits for it.
func (p *ctlProc) stop() error {
	p.stopping.Store(true)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.exited
	return p.err
}

// reports sums the reports of all processes.
func reports(procs []*ctlProc) (ctlReport, error) {
	sum := ctlReport{Requests: map[string]int64{}}
	for _, p := range procs {
		r, err := p.report()
		if err != nil {
			return sum, fmt.Errorf("controller process %d: %w", p.cmd.Process.Pid, err)
		}
		for k, v := range r.Requests {
			sum.Requests[k] += v
		}
		sum.Unwraps += r.Unwraps
		sum.HeapInuseMB += r.HeapInuseMB
	}
	return sum, nil
}

// rssKB returns each process's peak RSS (VmHWM) in KiB.
func rssKB(procs []*ctlProc) []int64 {
	out := make([]int64, 0, len(procs))
	for _, p := range procs {
		out = append(out, vmHWM(strconv.Itoa(p.cmd.Process.Pid)))
	}
	return out
}

const shardKey = "sharding.fluxcd.io/key"

func shardName(k int) string { return "shard" + strconv.Itoa(k) }
