package antivirus

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-mta/portcullis/sdk/cfgval"
)

// config is the stage's `config:` map, validated (the keys: see the
// package comment).
type config struct {
	Clamd     string
	Command   []string
	TempDir   string // absolute, or "" for the system's
	Timeout   time.Duration
	ChunkSize int
}

var configKeys = []string{"clamd", "command", "temp_dir", "timeout", "chunk_size"}

// parseConfig reads and validates the config map; defaults live here.
// Keys are read in order, so that of two mistakes the same one is
// reported each time. Errors start with the key: the host reports them as
// "stage NAME: config refused: ...", without a file or line.
func parseConfig(raw map[string]any, dir string) (config, error) {
	cfg := config{Timeout: 30 * time.Second, ChunkSize: 64 << 10}
	err := cfgval.Each(raw, func(k string, v any) (err error) {
		key := cfgval.Key(k)
		switch k {
		case "clamd":
			return cfgval.Set(&cfg.Clamd, v, key.Text)
		case "command":
			cfg.Command, err = key.Texts(v)
			return err
		case "temp_dir":
			return cfgval.Set(&cfg.TempDir, v, key.Text)
		case "timeout":
			return cfgval.Set(&cfg.Timeout, v, key.PositiveDuration)
		case "chunk_size":
			return cfgval.Set(&cfg.ChunkSize, v, func(v any) (int, error) { return key.Whole(v, 1<<10, 16<<20) })
		}
		return cfgval.UnknownKey(k, configKeys)
	})
	if err != nil {
		return cfg, err
	}
	switch {
	case (cfg.Clamd == "") == (len(cfg.Command) == 0):
		return cfg, fmt.Errorf("exactly one of clamd and command is required")
	case len(cfg.Command) > 0 && !slices.ContainsFunc(cfg.Command, func(a string) bool { return strings.Contains(a, "{file}") }):
		return cfg, fmt.Errorf("command: no {file} placeholder for the file to scan")
	case cfg.Clamd != "":
		if err := checkClamd(cfg.Clamd); err != nil {
			return cfg, err
		}
	default:
		exe, err := executable(cfg.Command[0], dir)
		if err != nil {
			return cfg, err
		}
		cfg.Command[0] = exe
	}
	if cfg.TempDir != "" && !filepath.IsAbs(cfg.TempDir) {
		cfg.TempDir = filepath.Join(dir, cfg.TempDir)
	}
	return cfg, nil
}

// clamdAddress reads "unix:PATH", "tcp:HOST:PORT", a path, or HOST:PORT.
func clamdAddress(s, dir string) (network, addr string) {
	switch {
	case strings.HasPrefix(s, "unix:"):
		s = strings.TrimPrefix(s, "unix:")
	case strings.HasPrefix(s, "tcp:"):
		return "tcp", strings.TrimPrefix(s, "tcp:")
	case !strings.Contains(s, "/") && strings.Contains(s, ":"):
		return "tcp", s
	}
	if !filepath.IsAbs(s) {
		s = filepath.Join(dir, s)
	}
	return "unix", s
}

// checkClamd refuses a clamd address that could only fail at every scan:
// a TCP address without a valid port, and an IP address written alone,
// which clamdAddress would take for a socket file in the config's
// directory.
func checkClamd(s string) error {
	switch {
	case strings.HasPrefix(s, "tcp:"):
		return checkTCP(s, strings.TrimPrefix(s, "tcp:"))
	case strings.HasPrefix(s, "unix:"):
		if strings.TrimPrefix(s, "unix:") == "" {
			return fmt.Errorf("clamd: %q names no socket (want unix:PATH)", s)
		}
	case net.ParseIP(s) != nil:
		return fmt.Errorf("clamd: %q is an address without a port (it would be read as a socket file); write tcp:%s for clamd's TCPSocket (3310 by default)",
			s, net.JoinHostPort(s, "PORT"))
	case !strings.Contains(s, "/") && strings.Contains(s, ":"):
		return checkTCP(s, s)
	}
	return nil
}

// checkTCP checks the HOST:PORT part hp of clamd address s.
func checkTCP(s, hp string) error {
	host, port, err := net.SplitHostPort(hp)
	if err != nil || host == "" {
		return fmt.Errorf("clamd: %q: want tcp:HOST:PORT (a host and a port)", s)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("clamd: %q: invalid port %q (want 1 to 65535)", s, port)
	}
	return nil
}

// executable resolves a command's program as the scan will run it and
// checks that it is there, so that a typo is refused at load rather than
// answered by a tempfail for every message: a bare name is looked up in
// PATH (and kept as written, for exec to find again), a relative path is
// taken from the config's directory, as the stage's other paths are.
func executable(name, dir string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("command[0]: the program must not be empty")
	}
	if !strings.ContainsRune(name, filepath.Separator) && !strings.ContainsRune(name, '/') {
		if _, err := exec.LookPath(name); err != nil {
			return "", fmt.Errorf("command[0]: %q is not an executable in PATH", name)
		}
		return name, nil
	}
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	switch st, err := os.Stat(path); {
	case err != nil:
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("command[0]: %s: %v", path, err)
	case !st.Mode().IsRegular():
		return "", fmt.Errorf("command[0]: %s is not a regular file", path)
	case st.Mode().Perm()&0o111 == 0:
		return "", fmt.Errorf("command[0]: %s is not executable", path)
	}
	return path, nil
}
