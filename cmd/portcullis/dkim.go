package main

import (
	"crypto"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/dkimsign"
)

func init() {
	register(&command{
		name:    "dkim",
		summary: "keygen DOMAIN SELECTOR [--type rsa|ed25519]: make a DKIM signing key and print its DNS record",
		run:     runDKIM,
	})
}

const dkimUsage = `usage: portcullis dkim keygen DOMAIN SELECTOR [--type rsa|ed25519] [--force] [-c FILE]

  Writes a new private key (PEM, mode 0600) where the config's dkim.sign
  entry for DOMAIN and SELECTOR expects it, or to dkim/DOMAIN.SELECTOR.key
  beside the config when there is none, and prints the TXT record to
  publish. An existing key is kept unless --force is given. Run as root,
  the key goes to the owner of the queue directory (the daemon's user).`

func runDKIM(args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help"):
		fmt.Fprintln(stderr, dkimUsage)
		return exitOK
	case len(args) == 0:
		return dkimBadUsage(stderr, "dkim: missing subcommand (keygen)")
	case args[0] != "keygen":
		return dkimBadUsage(stderr, fmt.Sprintf("dkim: unknown subcommand %q (the one there is: keygen)", args[0]))
	}
	fs := newFlagSet("dkim keygen", stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, dkimUsage) }
	cfgPath := addConfigFlag(fs)
	kind := fs.String("type", "rsa", "key `TYPE`: rsa (2048 bits) or ed25519")
	force := fs.Bool("force", false, "replace an existing key")
	pos, st := parseInterleaved(fs, args[1:])
	if st >= 0 {
		return st
	}
	if why := keygenArgsProblem(pos, *kind); why != "" {
		return dkimBadUsage(stderr, "dkim keygen: "+why)
	}
	domain, selector := strings.ToLower(pos[0]), pos[1]
	path, inConfig, err := dkimKeyPath(*cfgPath, domain, selector)
	if err != nil {
		printConfigError(stderr, err)
		return exitFailed
	}
	if _, err := os.Stat(path); err == nil && !*force {
		fmt.Fprintf(stderr, "portcullis dkim keygen: %s\n", errKeyExists(path))
		return exitFailed
	}
	newDirs := missingDirs(filepath.Dir(path))
	key, err := dkimsign.GenerateKey(*kind)
	if err == nil {
		err = writeKey(path, key, *force)
	}
	if err == nil {
		err = giveToDaemon(path, newDirs, *cfgPath, stderr)
	}
	var rec string
	if err == nil {
		rec, err = dkimsign.Record(domain, selector, key.Public())
	}
	if err != nil {
		fmt.Fprintf(stderr, "portcullis dkim keygen: %v\n", err)
		return exitFailed
	}
	fmt.Fprintln(stdout, rec)
	fmt.Fprintf(stderr, "portcullis dkim keygen: wrote %s\n", path)
	if !inConfig {
		fmt.Fprintf(stderr, "add to the config: dkim: {sign: [{domain: %s, selector: %s, key: %s}]}\n", domain, selector, relToConfig(*cfgPath, path))
	}
	return exitOK
}

// dkimBadUsage says what is wrong on one line, then shows the usage.
func dkimBadUsage(stderr io.Writer, why string) int {
	fmt.Fprintf(stderr, "portcullis %s\n%s\n", why, dkimUsage)
	return exitUsage
}

// keygenArgsProblem says what is wrong with keygen's DOMAIN SELECTOR and
// --type, or "". A selector is one or more labels (RFC 6376 3.1).
func keygenArgsProblem(pos []string, kind string) string {
	switch {
	case len(pos) == 0:
		return "missing DOMAIN and SELECTOR"
	case len(pos) == 1:
		return "missing SELECTOR"
	case len(pos) > 2:
		return fmt.Sprintf("unexpected argument %q (want DOMAIN SELECTOR)", pos[2])
	case !config.ValidDomain(pos[0]):
		return fmt.Sprintf("%q is not a domain name", pos[0])
	case !config.ValidDomain(pos[1]):
		return fmt.Sprintf("%q is not a selector (letters, digits and hyphens, dot-separated)", pos[1])
	case kind != "rsa" && kind != "ed25519":
		return fmt.Sprintf("unknown --type %q (want rsa or ed25519)", kind)
	}
	return ""
}

// dkimKeyPath is where the key for domain/selector goes: its dkim.sign
// entry's key, else dkim/DOMAIN.SELECTOR.key in the config's directory.
func dkimKeyPath(cfgPath, domain, selector string) (path string, inConfig bool, err error) {
	var dk config.DKIM
	var dir string
	cfg, err := loadConfig(cfgPath)
	switch {
	case err == nil:
		dk, dir = cfg.DKIM, cfg.Dir
	case onlyMissingKeys(err):
		// The config names a key that does not exist yet, which is what
		// keygen is for; the rest of the config is valid.
		if dk, dir, err = readDKIMSection(cfgPath); err != nil {
			return "", false, err
		}
	default:
		return "", false, err
	}
	for _, k := range dk.Sign {
		if strings.EqualFold(k.Domain, domain) && k.Selector == selector {
			if !filepath.IsAbs(k.Key) {
				k.Key = filepath.Join(dir, k.Key)
			}
			return k.Key, true, nil
		}
	}
	return filepath.Join(dir, "dkim", domain+"."+selector+".key"), false, nil
}

// onlyMissingKeys reports whether every load error is a dkim.sign key file
// that cannot be found.
func onlyMissingKeys(err error) bool {
	var errs config.Errors
	if !errors.As(err, &errs) || len(errs) == 0 {
		return false
	}
	for _, e := range errs {
		if !strings.HasPrefix(e.Msg, "dkim.sign[") || !strings.Contains(e.Msg, ".key: ") ||
			!strings.HasSuffix(e.Msg, syscall.ENOENT.Error()) {
			return false
		}
	}
	return true
}

func readDKIMSection(cfgPath string) (config.DKIM, string, error) {
	var doc struct {
		DKIM config.DKIM `yaml:"dkim"`
	}
	abs, err := filepath.Abs(cfgPath)
	if err != nil {
		return doc.DKIM, "", err
	}
	data, err := os.ReadFile(abs)
	if err == nil {
		err = yaml.Unmarshal(data, &doc)
	}
	return doc.DKIM, filepath.Dir(abs), err
}

func errKeyExists(path string) error {
	return fmt.Errorf("%s exists (the published record goes with it); --force replaces it", path)
}

// writeKey writes the PEM key with mode 0600 through a temporary file, so
// a crash leaves either no key or the whole one. Without replace an
// existing key is kept even if it appeared since keygen looked (a second
// keygen at the same time): the file is linked into place, which fails
// where rename would replace.
func writeKey(path string, key crypto.Signer, replace bool) error {
	data, err := dkimsign.MarshalKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".keygen-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // fails harmlessly after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if replace {
		return os.Rename(f.Name(), path)
	}
	if err := os.Link(f.Name(), path); errors.Is(err, fs.ErrExist) {
		return errKeyExists(path)
	} else if err != nil {
		return err
	}
	return nil
}

// giveToDaemon hands a key written by root to the daemon's user, the owner
// of the queue directory (the daemon made it), when that is another user:
// a key only root can read would stop `portcullis run` at its next start
// with "permission denied". The directories keygen made for the key
// (newDirs, mode 0700) go with it. Without such an owner it says so.
func giveToDaemon(keyPath string, newDirs []string, cfgPath string, stderr io.Writer) error {
	if os.Geteuid() != 0 {
		return nil
	}
	var uid, gid int
	cfg, err := loadConfig(cfgPath)
	if err == nil {
		var st os.FileInfo
		if st, err = os.Stat(cfg.Queue.Dir); err == nil {
			sys, _ := st.Sys().(*syscall.Stat_t)
			if sys != nil {
				uid, gid = int(sys.Uid), int(sys.Gid)
			}
		}
	}
	if uid == 0 {
		fmt.Fprintf(stderr, "portcullis dkim keygen: %s is root's (mode 0600); chown it to the user portcullis runs as\n", keyPath)
		return nil
	}
	for _, p := range append(newDirs, keyPath) {
		if err := os.Chown(p, uid, gid); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "portcullis dkim keygen: %s given to uid %d, the owner of the queue directory\n", keyPath, uid)
	return nil
}

// missingDirs lists dir and those of its parents that do not exist yet,
// outermost first.
func missingDirs(dir string) []string {
	var out []string
	for {
		if _, err := os.Stat(dir); err == nil {
			return out
		}
		out = append([]string{dir}, out...)
		parent := filepath.Dir(dir)
		if parent == dir {
			return out
		}
		dir = parent
	}
}

// relToConfig is path as the config would name it: relative to the
// config's directory when it lies below it.
func relToConfig(cfgPath, path string) string {
	dir := "."
	if cfgPath != "" {
		dir = filepath.Dir(cfgPath)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return path
	}
	if rel, err := filepath.Rel(abs, path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}
