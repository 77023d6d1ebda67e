//go:build linux

package pluginhost

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/pluginhost/internal/faultstage"
	"github.com/portcullis-mta/portcullis/sdk"
)

// checker is what a benchmark calls: the stage in process (the baseline)
// or through the host.
type checker interface {
	Check(ctx context.Context, req *sdk.Request) (*sdk.Result, error)
}

// cpuNow is the CPU time used so far by this process and the plugin process.
func cpuNow(pid int) (host, plugin time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		host = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if pid == 0 {
		return host, 0
	}
	// utime and stime, fields 14 and 15 of /proc/PID/stat, in clock ticks
	// (USER_HZ, 100 on Linux); they count all of the process's threads.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return host, 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return host, time.Duration(ut+st) * 10 * time.Millisecond
}

// measured is one sub-benchmark's last figures, kept for the ratio table.
type measured struct{ ns, cpu float64 }

func runCalls(b *testing.B, c checker, pid, parallel int) measured {
	req := connect("ok")
	ctx := context.Background()
	h0, p0 := cpuNow(pid)
	start := time.Now()
	b.ResetTimer()
	if parallel <= 1 {
		for b.Loop() {
			if _, err := c.Check(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		b.SetParallelism((parallel + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Check(ctx, req); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.StopTimer()
	wall := time.Since(start)
	h1, p1 := cpuNow(pid)
	n := float64(b.N)
	m := measured{ns: float64(wall.Nanoseconds()) / n, cpu: float64((h1 - h0 + p1 - p0).Nanoseconds()) / n}
	b.ReportMetric(float64((h1-h0).Nanoseconds())/n, "host-cpu-ns/op")
	b.ReportMetric(float64((p1-p0).Nanoseconds())/n, "plugin-cpu-ns/op")
	b.ReportMetric(m.cpu, "cpu-ns/op")
	return m
}

// BenchmarkCheck: one Check call, sequential and 32-way, through a plugin
// process with AutoMTLS off and on, beside the same stage called in
// process. Plugin runs report their ratios to the baselines measured
// before them in the same run (x-direct-*, x-mtls-off-*).
func BenchmarkCheck(b *testing.B) {
	results := map[string]measured{}
	modes := []struct {
		name     string
		parallel int
	}{{"seq", 1}, {"par32", 32}}
	for _, m := range modes {
		b.Run("direct/"+m.name, func(b *testing.B) {
			s := &faultstage.Stage{}
			results["direct/"+m.name] = runCalls(b, s, 0, m.parallel)
		})
	}
	for _, mtls := range []bool{false, true} {
		h := New(Options{AutoMTLS: mtls, Logger: discardLogger(), SocketDir: os.TempDir()})
		if err := h.Load(context.Background(), []Spec{faultSpec(b, "f", nil)}); err != nil {
			b.Fatal(err)
		}
		s, _ := h.Stage("f")
		for _, m := range modes {
			name := fmt.Sprintf("plugin/mtls=%v/%s", mtls, m.name)
			b.Run(name, func(b *testing.B) {
				got := runCalls(b, s, s.PID(), m.parallel)
				results[name] = got
				// Ratios to baselines measured earlier in this same run.
				if base := results["direct/"+m.name]; base.ns > 0 {
					b.ReportMetric(got.ns/base.ns, "x-direct-ns")
					b.ReportMetric(got.cpu/base.cpu, "x-direct-cpu")
				}
				if off := results["plugin/mtls=false/"+m.name]; mtls && off.ns > 0 {
					b.ReportMetric(got.ns/off.ns, "x-mtls-off-ns")
					b.ReportMetric(got.cpu/off.cpu, "x-mtls-off-cpu")
				}
			})
		}
		h.Close()
	}
}

// BenchmarkStart: starting one plugin (handshake, Info, Configure) and
// stopping it, with AutoMTLS off and on; the second reports its ratio to
// the first.
func BenchmarkStart(b *testing.B) {
	pluginBins(b) // build outside the timed loops
	var off float64
	for _, mtls := range []bool{false, true} {
		b.Run(fmt.Sprintf("mtls=%v", mtls), func(b *testing.B) {
			start := time.Now()
			for b.Loop() {
				h := New(Options{AutoMTLS: mtls, Logger: discardLogger(), SocketDir: os.TempDir()})
				if err := h.Load(context.Background(), []Spec{faultSpec(b, "f", nil)}); err != nil {
					b.Fatal(err)
				}
				h.Close()
			}
			ns := float64(time.Since(start).Nanoseconds()) / float64(b.N)
			if !mtls {
				off = ns
			} else if off > 0 {
				b.ReportMetric(ns/off, "x-mtls-off-ns")
			}
		})
	}
}

// BenchmarkDataCheck: a data-phase call on a 1 MiB message that the stage
// reads whole: in process (baseline), through the plugin reading the spool
// file itself, and through the plugin reading the host's memory in chunks.
func BenchmarkDataCheck(b *testing.B) {
	raw := bigMessage("bench")[:1<<20]
	path := b.TempDir() + "/q"
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		b.Fatal(err)
	}
	msgs := []struct {
		name string
		msg  *sdk.Message
	}{
		{"file", sdk.NewFileMessage(nil, path, 0, int64(len(raw)))},
		{"memory", sdk.NewBytesMessage(nil, raw)},
	}
	h := New(Options{Logger: discardLogger(), SocketDir: os.TempDir()})
	defer h.Close()
	if err := h.Load(context.Background(), []Spec{faultSpec(b, "f", nil)}); err != nil {
		b.Fatal(err)
	}
	s, _ := h.Stage("f")
	var base float64
	for _, via := range []struct {
		name string
		c    checker
	}{{"direct", &faultstage.Stage{}}, {"plugin", s}} {
		for _, m := range msgs {
			b.Run(via.name+"/"+m.name, func(b *testing.B) {
				req := &sdk.Request{Phase: sdk.PhaseData, Message: m.msg}
				start := time.Now()
				for b.Loop() {
					if _, err := via.c.Check(context.Background(), req); err != nil {
						b.Fatal(err)
					}
				}
				ns := float64(time.Since(start).Nanoseconds()) / float64(b.N)
				if via.name == "direct" && m.name == "file" {
					base = ns
				} else if base > 0 {
					b.ReportMetric(ns/base, "x-direct-file-ns")
				}
				b.SetBytes(int64(len(raw)))
			})
		}
	}
}
