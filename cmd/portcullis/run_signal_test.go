package main

import (
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"testing"
)

// raise sends sig to this process and waits until the runtime has handed
// it out: watch is notified of it, and the signals before it were handed
// out completely (the runtime dispatches one signal at a time).
func raise(t *testing.T, watch <-chan os.Signal, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), sig); err != nil {
		t.Fatal(err)
	}
	for got := range watch {
		if got == sig {
			return
		}
	}
}

// TestSignalStormDuringReload: SIGHUPs that arrive while a reload runs
// coalesce into one more reload, and a SIGTERM after them is not lost to a
// channel full of SIGHUPs: the daemon stops on it.
func TestSignalStormDuringReload(t *testing.T) {
	watch := make(chan os.Signal, 32)
	signal.Notify(watch, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1)
	defer signal.Stop(watch)
	hup, stop := notifySignals()
	defer signal.Stop(hup)
	defer signal.Stop(stop)

	entered := make(chan struct{}, 16)
	release := make(chan struct{})
	var reloads atomic.Int32
	done := make(chan os.Signal, 1)
	go func() {
		done <- waitForStop(hup, stop, func() {
			reloads.Add(1)
			entered <- struct{}{}
			<-release // the first reload is slow; the storm comes meanwhile
		})
	}()

	raise(t, watch, syscall.SIGHUP)
	<-entered
	for range 8 {
		raise(t, watch, syscall.SIGHUP)
	}
	raise(t, watch, syscall.SIGTERM)
	raise(t, watch, syscall.SIGUSR1) // the SIGTERM was handed out before this one
	close(release)
	// Had the SIGTERM been dropped, this SIGINT would end the wait instead.
	raise(t, watch, syscall.SIGINT)
	if got := <-done; got != syscall.SIGTERM {
		t.Fatalf("stopped on %v, want %v: the SIGTERM sent during the reload was lost", got, syscall.SIGTERM)
	}
	if n := reloads.Load(); n != 1 {
		t.Fatalf("%d reloads, want 1: a stop pending with SIGHUPs must not wait for more reloads", n)
	}
}

// TestSignalCoalescedReloadAfterStorm: SIGHUPs during a reload are not
// lost either: one more reload follows, so the files' last state wins.
func TestSignalCoalescedReloadAfterStorm(t *testing.T) {
	watch := make(chan os.Signal, 32)
	signal.Notify(watch, syscall.SIGHUP, syscall.SIGTERM)
	defer signal.Stop(watch)
	hup, stop := notifySignals()
	defer signal.Stop(hup)
	defer signal.Stop(stop)

	entered := make(chan int32, 16)
	release := make(chan struct{})
	var reloads atomic.Int32
	done := make(chan os.Signal, 1)
	go func() {
		done <- waitForStop(hup, stop, func() {
			entered <- reloads.Add(1)
			<-release
		})
	}()
	raise(t, watch, syscall.SIGHUP)
	<-entered
	for range 8 {
		raise(t, watch, syscall.SIGHUP)
	}
	close(release)
	if n := <-entered; n != 2 {
		t.Fatalf("reload %d after the storm, want the 2nd", n)
	}
	raise(t, watch, syscall.SIGTERM)
	if got := <-done; got != syscall.SIGTERM {
		t.Fatalf("stopped on %v", got)
	}
	if n := reloads.Load(); n != 2 {
		t.Fatalf("%d reloads, want 2: SIGHUPs during a reload coalesce into one", n)
	}
}
