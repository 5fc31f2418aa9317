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
)

type result struct {
	n, concurrent   int
	setup, create   time.Duration
	ready           time.Duration
	resync          time.Duration
	change          time.Duration
	changeAll       time.Duration
	sourceDone      time.Duration // the GitRepository has the new artifact
	rssKB           int64
	unwrapsInitial  int64
	unwrapsResync   int64
	reqInitial      map[string]int64
	reqResync       map[string]int64
	reqChange       map[string]int64
	load0, load1    string
	heapInuseMB     float64
	goroutinesAfter int
	cpuInitial      map[string]time.Duration
	cpuResync       map[string]time.Duration
}

// cpuTimes returns the CPU time (user+system) of this process and of its
// children (kube-apiserver, etcd) by command name.
func cpuTimes() map[string]time.Duration {
	out := map[string]time.Duration{}
	read := func(pid string) {
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
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		out[name] += time.Duration(u+st) * 10 * time.Millisecond // USER_HZ = 100
	}
	self := strconv.Itoa(os.Getpid())
	read(self)
	tasks, _ := filepath.Glob("/proc/" + self + "/task/*/children")
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, pid := range strings.Fields(string(b)) {
			read(pid)
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
	rssMB := float64(r.rssKB) / 1024
	statusW := r.reqResync["patch write: Kustomization status"] + r.reqResync["put write: Kustomization status"]
	otherW := writes(r.reqResync, true)
	fmt.Fprintf(w, "\n## N = %d Kustomizations (--concurrent=%d, GOMAXPROCS=%d)\n\n", r.n, r.concurrent, runtime.GOMAXPROCS(0))
	fmt.Fprintf(w, "load average before: %s; after: %s\n", r.load0, r.load1)
	fmt.Fprintf(w, "setup (control plane, Git repo with %d encrypted Secrets): %s; creating the objects: %s\n\n", r.n, r.setup.Round(time.Millisecond), r.create.Round(time.Millisecond))
	fmt.Fprintf(w, "| measure | value | target |\n|---|---:|---|\n")
	fmt.Fprintf(w, "| all %d Ready (from controller start) | %.1f s | %s |\n", r.n, r.ready.Seconds(), readyTarget(r))
	fmt.Fprintf(w, "| peak RSS of the process (VmHWM; controllers + driver) | %.0f MB | < 150 MB: %s |\n", rssMB, mark(rssMB < 150))
	fmt.Fprintf(w, "| heap in use after the initial reconcile | %.0f MB | — |\n", r.heapInuseMB)
	fmt.Fprintf(w, "| API requests, initial reconcile | %d (%d writes) | — |\n", total(r.reqInitial), writes(r.reqInitial, false))
	fmt.Fprintf(w, "| key unwraps, initial reconcile | %d | — |\n", r.unwrapsInitial)
	fmt.Fprintf(w, "| no-change resync of all %d: time | %.1f s | — |\n", r.n, r.resync.Seconds())
	fmt.Fprintf(w, "| resync: key unwraps | %d | 0: %s |\n", r.unwrapsResync, mark(r.unwrapsResync == 0))
	fmt.Fprintf(w, "| resync: API writes other than Kustomization status | %d | 0: %s |\n", otherW, mark(otherW == 0))
	fmt.Fprintf(w, "| resync: Kustomization status writes | %d | (one per Kustomization) |\n", statusW)
	fmt.Fprintf(w, "| resync: API requests in all | %d | — |\n", total(r.reqResync))
	fmt.Fprintf(w, "| one Secret changed in Git: until the cluster has it | %.2f s | < 2 s: %s |\n", r.change.Seconds(), mark(r.change < 2*time.Second))
	fmt.Fprintf(w, "| one Secret changed: until the GitRepository has the new artifact | %.2f s | — |\n", r.sourceDone.Seconds())
	fmt.Fprintf(w, "| one Secret changed: until all %d applied the new revision | %.1f s | — |\n", r.n, r.changeAll.Seconds())
	fmt.Fprintf(w, "\nCPU time, initial reconcile: %s\n", fmtCPU(r.cpuInitial))
	fmt.Fprintf(w, "CPU time, resync: %s\n", fmtCPU(r.cpuResync))
	fmt.Fprintf(w, "requests, initial: %s\n", fmtReqs(r.reqInitial))
	fmt.Fprintf(w, "requests, resync (annotation patches are made by the driver's own client and not counted): %s\n", fmtReqs(r.reqResync))
	fmt.Fprintf(w, "requests, one-Secret change: %s\n", fmtReqs(r.reqChange))
}

func readyTarget(r *result) string {
	if r.n != 1000 {
		return "(1,000 in < 60 s)"
	}
	return "< 60 s: " + mark(r.ready < time.Minute)
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

// vmHWM returns the process's peak resident set size in KiB.
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
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
