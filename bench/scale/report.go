package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lacre/lacre/internal/testsupport"
)

type result struct {
	N, Shards, Concurrent int
	setup, create         time.Duration
	Ready                 time.Duration
	FloorApply            time.Duration // the floor of the initial reconcile
	FloorStatus           time.Duration // the floor of a resync: the annotation and one status write each
	Resync                time.Duration
	Change                time.Duration
	ChangeAll             time.Duration
	sourceDone            time.Duration // the GitRepository has the new artifact
	RSSKB                 []int64       // each controller process's VmHWM
	driverRSSKB           int64
	unwrapsInitial        int64
	UnwrapsResync         int64
	reqInitial            map[string]int64
	ReqResync             map[string]int64
	reqChange             map[string]int64
	reqFloor              map[string]int64
	Load0, Load1          string
	HeapInuseMB           float64
	cpuInitial            map[string]time.Duration
	cpuResync             map[string]time.Duration
}

// cpuTimes returns the CPU time (user+system) of the driver, of the
// controller processes (summed) and of the other children (kube-apiserver,
// etcd, git) by command name.
func cpuTimes(procs []*ctlProc) map[string]time.Duration {
	out := map[string]time.Duration{}
	ctl := map[string]bool{}
	for _, p := range procs {
		ctl[strconv.Itoa(p.cmd.Process.Pid)] = true
	}
	read := func(pid, as string) {
		b, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return
		}
		s := string(b)
		i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if i < 0 || j < i {
			return
		}
		name, f := s[i+1:j], strings.Fields(s[j+1:])
		if len(f) < 13 {
			return
		}
		if as != "" {
			name = as
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		out[name] += time.Duration(u+st) * 10 * time.Millisecond // USER_HZ = 100
	}
	self := strconv.Itoa(os.Getpid())
	read(self, "driver")
	tasks, _ := filepath.Glob("/proc/" + self + "/task/*/children")
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, pid := range strings.Fields(string(b)) {
			if ctl[pid] {
				read(pid, "lacre controllers")
			} else {
				read(pid, "")
			}
		}
	}
	return out
}

func diffCPU(a, b map[string]time.Duration) map[string]time.Duration {
	out := map[string]time.Duration{}
	for k, v := range b {
		out[k] = v - a[k]
	}
	return out
}

func fmtCPU(m map[string]time.Duration) string {
	return fmtSorted(m, func(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) })
}

// fmtSorted prints "key value, ..." in key order.
func fmtSorted[V any](m map[string]V, value func(V) string) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b strings.Builder
	for i, k := range ks {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k + " " + value(m[k]))
	}
	return b.String()
}

func writes(m map[string]int64, skipStatus bool) (n int64) {
	for k, v := range m {
		if !strings.Contains(k, " write") {
			continue
		}
		if skipStatus && strings.HasSuffix(k, "Kustomization status") {
			continue
		}
		n += v
	}
	return n
}

func total(m map[string]int64) (n int64) {
	for _, v := range m {
		n += v
	}
	return n
}

func fmtReqs(m map[string]int64) string {
	return fmtSorted(m, func(n int64) string { return strconv.FormatInt(n, 10) })
}

func mark(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT MET"
}

func (r *result) print(w io.Writer) {
	statusW := r.ReqResync["patch "+testsupport.ClassKustomizationStatus] + r.ReqResync["put "+testsupport.ClassKustomizationStatus]
	otherW := writes(r.ReqResync, true)
	perKS := float64(total(r.ReqResync)) / float64(r.N)
	maxRSS, sumRSS := rssMB(r.RSSKB)
	fmt.Fprintf(w, "\n## N = %d Kustomizations, %d controller process(es) (--concurrent=%d each, GOMAXPROCS=%d, %d CPUs)\n\n", r.N, r.Shards, r.Concurrent, runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Fprintf(w, "load average before: %s; after: %s\n", r.Load0, r.Load1)
	fmt.Fprintf(w, "setup (control plane, Git repo with %d encrypted Secrets): %s; creating the objects: %s\n\n", r.N, r.setup.Round(time.Millisecond), r.create.Round(time.Millisecond))
	fmt.Fprintf(w, "| measure | value | target |\n|---|---:|---|\n")
	fmt.Fprintf(w, "| floor: %d×4 objects server-side applied + %d status writes (%d requests) | %.1f s | — |\n", r.N, r.N, total(r.reqFloor), r.FloorApply.Seconds())
	fmt.Fprintf(w, "| all %d Ready (from controller start) | %.1f s | %s |\n", r.N, r.Ready.Seconds(), readyTarget(r))
	fmt.Fprintf(w, "| Ready ÷ floor | %.2fx | ≤ 2x: %s |\n", ratio(r.Ready, r.FloorApply), mark(ratio(r.Ready, r.FloorApply) <= 2))
	fmt.Fprintf(w, "| controller peak RSS (VmHWM), largest process / all | %.0f MB / %.0f MB | %s |\n", maxRSS, sumRSS, rssTarget(r, maxRSS))
	fmt.Fprintf(w, "| driver peak RSS (not the controllers) | %.0f MB | — |\n", float64(r.driverRSSKB)/1024)
	fmt.Fprintf(w, "| controllers' heap in use after the initial reconcile | %.0f MB | — |\n", r.HeapInuseMB)
	fmt.Fprintf(w, "| API requests, initial reconcile | %d (%d writes) | — |\n", total(r.reqInitial), writes(r.reqInitial, false))
	fmt.Fprintf(w, "| key unwraps, initial reconcile | %d | — |\n", r.unwrapsInitial)
	fmt.Fprintf(w, "| floor of a resync: %d annotation patches, then %d status writes | %.1f s | — |\n", r.N, r.N, r.FloorStatus.Seconds())
	fmt.Fprintf(w, "| no-change resync of all %d | %.1f s | %s |\n", r.N, r.Resync.Seconds(), resyncTarget(r))
	fmt.Fprintf(w, "| resync ÷ its floor | %.2fx | — |\n", ratio(r.Resync, r.FloorStatus))
	fmt.Fprintf(w, "| resync: API requests per Kustomization | %.2f | ≤ 2: %s |\n", perKS, mark(perKS <= 2))
	fmt.Fprintf(w, "| resync: key unwraps | %d | 0: %s |\n", r.UnwrapsResync, mark(r.UnwrapsResync == 0))
	fmt.Fprintf(w, "| resync: API writes other than Kustomization status | %d | 0: %s |\n", otherW, mark(otherW == 0))
	fmt.Fprintf(w, "| resync: Kustomization status writes | %d | (one per Kustomization: the handled-request stamp) |\n", statusW)
	fmt.Fprintf(w, "| one Secret changed in Git: until the cluster has it | %.2f s | < 2 s: %s |\n", r.Change.Seconds(), mark(r.Change < 2*time.Second))
	fmt.Fprintf(w, "| one Secret changed: until the GitRepository has the new artifact | %.2f s | — |\n", r.sourceDone.Seconds())
	fmt.Fprintf(w, "| one Secret changed: until all %d applied the new revision | %.1f s | %s |\n", r.N, r.ChangeAll.Seconds(), changeAllTarget(r))
	fmt.Fprintf(w, "| one Secret changed: dry runs and object writes | %d | (the changed Kustomization's only) |\n", r.reqChange["patch "+testsupport.ClassDryRun]+r.reqChange["patch "+testsupport.ClassObject])
	fmt.Fprintf(w, "\nCPU time, initial reconcile: %s\n", fmtCPU(r.cpuInitial))
	fmt.Fprintf(w, "CPU time, resync: %s\n", fmtCPU(r.cpuResync))
	fmt.Fprintf(w, "requests, floor: %s\n", fmtReqs(r.reqFloor))
	fmt.Fprintf(w, "requests, initial: %s\n", fmtReqs(r.reqInitial))
	fmt.Fprintf(w, "requests, resync (annotation patches are made by the driver's own client and not counted): %s\n", fmtReqs(r.ReqResync))
	fmt.Fprintf(w, "requests, one-Secret change: %s\n", fmtReqs(r.reqChange))
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return a.Seconds() / b.Seconds()
}

func rssMB(kb []int64) (largest, sum float64) {
	for _, v := range kb {
		mb := float64(v) / 1024
		largest = max(largest, mb)
		sum += mb
	}
	return largest, sum
}

// The targets are set at N=10,000; at other N they are printed
// for reference.
func readyTarget(r *result) string {
	if r.N != 10000 {
		return "(10,000 in < 5 min)"
	}
	return "< 5 min: " + mark(r.Ready < 5*time.Minute)
}

func resyncTarget(r *result) string {
	if r.N != 10000 {
		return "(10,000 in < 60 s)"
	}
	return "< 60 s: " + mark(r.Resync < time.Minute)
}

func changeAllTarget(r *result) string {
	if r.N != 10000 {
		return "(10,000 in < 30 s)"
	}
	return "< 30 s: " + mark(r.ChangeAll < 30*time.Second)
}

func rssTarget(r *result, largest float64) string {
	if r.N != 10000 {
		return "(< 500 MB at 10,000)"
	}
	return "< 500 MB: " + mark(largest < 500)
}

// printGrowth compares runs with the same number of processes: time and
// memory from the smallest N to each larger one, against linear growth.
func printGrowth(w io.Writer, rs []*result) {
	fmt.Fprintf(w, "\n## Growth (against the smallest N with as many processes; linear = the ratio of N)\n\n")
	fmt.Fprintf(w, "| processes | N | ×N | Ready × | resync × | all at new revision × | largest RSS × | no worse than linear |\n|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, a := range rs {
		for _, b := range rs {
			if a.Shards != b.Shards || b.N <= a.N || smallerExists(rs, a) {
				continue
			}
			la, _ := rssMB(a.RSSKB)
			lb, _ := rssMB(b.RSSKB)
			xn := float64(b.N) / float64(a.N)
			xs := []float64{ratio(b.Ready, a.Ready), ratio(b.Resync, a.Resync), ratio(b.ChangeAll, a.ChangeAll), lb / la}
			ok := true
			for _, x := range xs {
				ok = ok && x <= xn
			}
			fmt.Fprintf(w, "| %d | %d→%d | %.0f | %.1f | %.1f | %.1f | %.2f | %s |\n", b.Shards, a.N, b.N, xn, xs[0], xs[1], xs[2], xs[3], mark(ok))
		}
	}
}

// smallerExists says whether rs has a run with a's processes and fewer
// Kustomizations.
func smallerExists(rs []*result, a *result) bool {
	for _, r := range rs {
		if r.Shards == a.Shards && r.N < a.N {
			return true
		}
	}
	return false
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// vmHWM returns a process's peak resident set size in KiB ("self" for
// this one).
func vmHWM(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				return n
			}
		}
	}
	return 0
}
