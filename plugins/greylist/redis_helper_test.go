package greylist

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server the test started on loopback.
type redisServer struct {
	url  string
	addr string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// startRedis starts a private redis-server (Debian package redis-server)
// on 127.0.0.1 with a free port, no persistence, in a temporary directory,
// and kills it when the test ends. A missing binary fails the test: CI
// installs the package (.ci/run).
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found (install the Debian package redis-server; .ci/run does): %v", err)
	}
	dir := t.TempDir()
	var lastErr error
	// The free port may be taken between probing and redis binding it:
	// try another then.
	for range 5 {
		srv, err := launchRedis(t, bin, dir)
		if err == nil {
			return srv
		}
		lastErr = err
	}
	t.Fatalf("redis-server did not start: %v", lastErr)
	return nil
}

func launchRedis(t testing.TB, bin, dir string) (*redisServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "redis-"+port+".log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--dir", dir, "--enable-debug-command", "local")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	srv := &redisServer{url: "redis://127.0.0.1:" + port + "/0", addr: "127.0.0.1:" + port, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(srv.done) }()
	if err := srv.waitReady(); err != nil {
		srv.kill()
		log, _ := os.ReadFile(logf.Name())
		return nil, fmt.Errorf("%v; log:\n%s", err, log)
	}
	t.Cleanup(srv.kill)
	return srv, nil
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

// waitReady pings until the server answers or exits.
func (s *redisServer) waitReady() error {
	c := s.client()
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-s.done:
			return fmt.Errorf("redis-server exited")
		default:
		}
		err := c.Ping(context.Background()).Err()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within 10s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client is a direct connection for inspecting the server's keys.
func (s *redisServer) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1})
}

// kill stops the server (idempotent) and waits for it to exit.
func (s *redisServer) kill() {
	s.cmd.Process.Kill()
	<-s.done
}
