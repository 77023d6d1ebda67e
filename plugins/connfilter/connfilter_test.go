package connfilter

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
)

const delegated = `2|apnic|20261127|3|19830613|20261126|+0900
apnic|*|ipv4|*|2|summary
apnic|*|ipv6|*|1|summary
apnic|JP|ipv4|203.0.113.0|128|20110412|allocated
apnic|CN|ipv4|203.0.113.128|64|20110412|allocated
apnic|JP|asn|173|1|20020801|allocated
apnic|KR|ipv6|2001:db8:100::|40|20000101|allocated|A91234
apnic||ipv4|198.51.100.0|256||reserved
apnic|ZZ|ipv4|192.0.2.0|256||available
`

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newStage(t *testing.T, dir string, cfg map[string]any) *Stage {
	t.Helper()
	s := New().(*Stage)
	if err := s.Configure(context.Background(), sdk.Env{ConfigDir: dir}, cfg); err != nil {
		t.Fatal(err)
	}
	return s
}

func check(t *testing.T, s *Stage, ip, host string) *sdk.Result {
	t.Helper()
	res, err := s.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseConnect, Conn: sdk.Conn{IP: ip, Hostname: host}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "deny.txt", "# denied\n\n203.0.113.77   # one host\n2001:db8:bad::/48\nREJECT/IP/192.0.2.9\n")
	writeFile(t, dir, "filter.txt", "REJECT/IP/198.51.100.0/25\nPASS/IP/127.0.0.1\nREJECT/HOST/*.dyn.example\nPASS/HOST/mail.partner.example\n")
	writeFile(t, dir, "apnic.txt", delegated)
	s := newStage(t, dir, map[string]any{
		"deny": map[string]any{
			"entries": []any{"10.1.0.0,255.255.0.0", "*.pool.example", "country:CN", "::ffff:10.9.9.9"},
			"files":   []any{"deny.txt"},
		},
		"allow":     []any{"10.1.2.3", "kr", "host:good.example", "203.0.113.0/26"},
		"filters":   []any{"filter.txt"},
		"countries": []any{"apnic.txt"},
	})
	tests := []struct {
		name, ip, host string
		verdict        sdk.Verdict
		list, entry    string
		country        string
	}{
		{"deny ip from file", "203.0.113.77", "", sdk.VerdictFail, "deny", "203.0.113.77", "JP"},
		{"deny beats allow", "10.1.2.3", "", sdk.VerdictFail, "deny", "10.1.0.0,255.255.0.0", ""},
		{"mapped entry", "10.9.9.9", "", sdk.VerdictFail, "deny", "::ffff:10.9.9.9", ""},
		{"v6 cidr", "2001:db8:bad::1", "", sdk.VerdictFail, "deny", "2001:db8:bad::/48", ""},
		{"filter line in list file", "192.0.2.9", "", sdk.VerdictFail, "deny", "ip:192.0.2.9", ""},
		{"filter reject cidr", "198.51.100.100", "", sdk.VerdictFail, "deny", "ip:198.51.100.0/25", ""},
		{"filter reject outside cidr", "198.51.100.200", "", sdk.VerdictNone, "", "", ""},
		{"filter pass", "127.0.0.1", "", sdk.VerdictPass, "allow", "ip:127.0.0.1", ""},
		{"filter host", "192.0.2.50", "a.b.DYN.example.", sdk.VerdictFail, "deny", "host:*.dyn.example", ""},
		{"filter host base name not below", "192.0.2.50", "dyn.example", sdk.VerdictNone, "", "", ""},
		{"filter pass host", "192.0.2.50", "mail.partner.example", sdk.VerdictPass, "allow", "host:mail.partner.example", ""},
		{"host pattern", "192.0.2.51", "x.pool.example", sdk.VerdictFail, "deny", "*.pool.example", ""},
		{"country deny", "203.0.113.130", "", sdk.VerdictFail, "deny", "country:CN", "CN"},
		{"allow cidr", "203.0.113.5", "", sdk.VerdictPass, "allow", "203.0.113.0/26", "JP"},
		{"country allow v6", "2001:db8:1ff::1", "", sdk.VerdictPass, "allow", "kr", "KR"},
		{"allow host", "192.0.2.60", "good.example", sdk.VerdictPass, "allow", "host:good.example", ""},
		{"nothing", "203.0.113.100", "mx.example", sdk.VerdictNone, "", "", "JP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := check(t, s, tt.ip, tt.host)
			if res.Verdict != tt.verdict || res.Attrs["list"] != tt.list || res.Attrs["entry"] != tt.entry {
				t.Errorf("got %s list=%q entry=%q, want %s %q %q", res.Verdict, res.Attrs["list"], res.Attrs["entry"], tt.verdict, tt.list, tt.entry)
			}
			if c, ok := res.Attrs["country"]; !ok || c != tt.country {
				t.Errorf("country %q (set %v), want %q", c, ok, tt.country)
			}
			if tt.list != "" && !slices.Equal(res.Tags, []string{tt.list}) {
				t.Errorf("tags %q", res.Tags)
			}
		})
	}
	if res := check(t, s, "192.0.2.50", ""); res.Attrs["hostname"] != "unknown" {
		t.Errorf("no hostname: attrs %v", res.Attrs)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "bad.txt", "203.0.113.1\n203.0.113.300\n")
	writeFile(t, dir, "badfilter.txt", "REJECT/MAIL/x@example\n")
	writeFile(t, dir, "glued.txt", "203.0.113.1\n203.0.113.5#one-host\n")
	writeFile(t, dir, "filterhost.txt", "REJECT/HOST/192.0.2.9\n")
	writeFile(t, dir, "baddeleg.txt", "apnic|JP|ipv4|203.0.113.0|abc|20110412|allocated\n")
	tests := []struct {
		name string
		cfg  map[string]any
		want string
	}{
		{"unknown key", map[string]any{"dney": []any{"1.2.3.4"}}, "unknown key"},
		{"bad ip", map[string]any{"deny": []any{"203.0.113.300"}}, "bad address"},
		{"bad mask", map[string]any{"deny": []any{"192.0.2.0,255.0.255.0"}}, "not contiguous"},
		{"bad cidr", map[string]any{"allow": []any{"192.0.2.0/33"}}, "bad CIDR"},
		{"bad country", map[string]any{"deny": []any{"country:CHN"}}, "bad country"},
		{"bad pattern", map[string]any{"deny": []any{"host:[a"}}, "bad host pattern"},
		// Neither an address nor a pattern any host name matches: each of
		// these loaded as a host pattern that never matched.
		{"address range", map[string]any{"deny": []any{"10.0.0.1-10.0.0.255"}}, `bad host pattern "10.0.0.1-10.0.0.255": no host name ends in a number`},
		{"address with a semicolon", map[string]any{"deny": []any{"203.0.113.5;"}}, `bad host pattern "203.0.113.5;": ';' is in no host name`},
		{"address as a host", map[string]any{"deny": []any{"host:203.0.113.5"}}, "no host name ends in a number"},
		{"postfix parent domain", map[string]any{"allow": []any{".partner.example"}}, "an empty label (the names below a domain are *.example)"},
		{"mail address", map[string]any{"deny": []any{"@spam.example"}}, `'@' is in no host name`},
		{"comment without a space", map[string]any{"deny": map[string]any{"files": []any{"glued.txt"}}}, `glued.txt:2: bad host pattern "203.0.113.5#one-host": '#' is in no host name`},
		{"filter host line", map[string]any{"filters": []any{"filterhost.txt"}}, `filterhost.txt:1: bad host pattern "192.0.2.9": no host name ends in a number`},
		{"line number", map[string]any{"deny": map[string]any{"files": []any{"bad.txt"}}}, "bad.txt:2:"},
		{"missing file", map[string]any{"filters": []any{"nope.txt"}}, "nope.txt"},
		{"filter type", map[string]any{"filters": []any{"badfilter.txt"}}, "unknown filter type \"MAIL\" (want IP, HOST or COUNTRY)"},
		{"plain line in filters", map[string]any{"filters": []any{"bad.txt"}}, "want ACTION/TYPE/VALUE"},
		{"delegated", map[string]any{"countries": []any{"baddeleg.txt"}}, "baddeleg.txt:1: bad value"},
		{"interval", map[string]any{"reload_interval": "soon"}, "bad duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := New().Configure(context.Background(), sdk.Env{ConfigDir: dir}, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want %q", err, tt.want)
			}
		})
	}
}

// TestReloadOnChange moves the stage's clock past reload_interval after
// rewriting a list file; a broken rewrite keeps the previous lists.
func TestReloadOnChange(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "deny.txt", "192.0.2.1\n")
	now := time.Unix(1_800_000_000, 0)
	s := &Stage{now: func() time.Time { return now }}
	if err := s.Configure(context.Background(), sdk.Env{ConfigDir: dir}, map[string]any{
		"deny": map[string]any{"files": []any{"deny.txt"}}, "reload_interval": "10s"}); err != nil {
		t.Fatal(err)
	}
	rewrite := func(text string, age time.Duration) {
		writeFile(t, dir, "deny.txt", text)
		mt := time.Now().Add(age)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	rewrite("192.0.2.2\n", time.Hour)
	if v := check(t, s, "192.0.2.2", "").Verdict; v != sdk.VerdictNone {
		t.Fatalf("reloaded before the interval: %s", v)
	}
	now = now.Add(11 * time.Second)
	if v := check(t, s, "192.0.2.2", "").Verdict; v != sdk.VerdictFail {
		t.Fatalf("not reloaded after the interval: %s", v)
	}
	rewrite("192.0.2.3\nnot/an/entry\n", 2*time.Hour)
	now = now.Add(11 * time.Second)
	res := check(t, s, "192.0.2.2", "")
	if res.Verdict != sdk.VerdictFail || !strings.Contains(res.Attrs["reload_error"], "deny.txt:2") {
		t.Fatalf("broken file: %s %v", res.Verdict, res.Attrs)
	}
	// Configure again (SIGHUP) after a fix.
	rewrite("192.0.2.3\n", 3*time.Hour)
	if err := s.Configure(context.Background(), sdk.Env{ConfigDir: dir}, map[string]any{
		"deny": map[string]any{"files": []any{"deny.txt"}}}); err != nil {
		t.Fatal(err)
	}
	if res := check(t, s, "192.0.2.3", ""); res.Verdict != sdk.VerdictFail || res.Attrs["reload_error"] != "" {
		t.Fatalf("after Configure: %s %v", res.Verdict, res.Attrs)
	}
}

// TestReloadOnReplace: a list file replaced by rename (vim, sed -i, a
// ConfigMap's ..data swap) is re-read even when the new file has the old
// size and modification time.
func TestReloadOnReplace(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "deny.txt", "192.0.2.1\n")
	mt := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(p, mt, mt); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	s := &Stage{now: func() time.Time { return now }}
	if err := s.Configure(context.Background(), sdk.Env{ConfigDir: dir}, map[string]any{
		"deny": map[string]any{"files": []any{"deny.txt"}}, "reload_interval": "10s"}); err != nil {
		t.Fatal(err)
	}
	tmp := writeFile(t, dir, "deny.txt.tmp", "192.0.2.2\n")
	if err := os.Chtimes(tmp, mt, mt); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	now = now.Add(11 * time.Second)
	if v := check(t, s, "192.0.2.2", "").Verdict; v != sdk.VerdictFail {
		t.Fatalf("replaced file not re-read: %s", v)
	}
}

// TestBrokenFileReadOnce: a list file that fails to load is not re-read
// (a large list parsed again) every reload_interval, only when it changes.
func TestBrokenFileReadOnce(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "deny.txt", "192.0.2.1\n")
	now := time.Unix(1_800_000_000, 0)
	s := &Stage{now: func() time.Time { return now }}
	if err := s.Configure(context.Background(), sdk.Env{ConfigDir: dir}, map[string]any{
		"deny": map[string]any{"files": []any{"deny.txt"}}, "reload_interval": "10s"}); err != nil {
		t.Fatal(err)
	}
	p := writeFile(t, dir, "deny.txt", "192.0.2.3\nnot/an/entry\n")
	now = now.Add(11 * time.Second)
	if res := check(t, s, "192.0.2.1", ""); res.Verdict != sdk.VerdictFail || res.Attrs["reload_error"] == "" {
		t.Fatalf("broken file: %s %v", res.Verdict, res.Attrs)
	}
	// Rewrite it in place, same size, same mtime: a re-read would now
	// report line 1, so line 2 in the error shows it was not read again.
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "deny.txt", "not/an/entry\n192.0.2.3\n")
	if err := os.Chtimes(p, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	now = now.Add(11 * time.Second)
	if res := check(t, s, "192.0.2.1", ""); !strings.Contains(res.Attrs["reload_error"], "deny.txt:2") {
		t.Fatalf("the unchanged broken file was read again: %v", res.Attrs)
	}
}

// TestReloadLogged: a changed file that is refused says so in the log,
// once (not on every connection or every reload_interval), with the file,
// line and problem, and a later change that loads says so too. Before,
// only attrs.reload_error knew, and entries just added silently did not
// take effect.
func TestReloadLogged(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "deny.txt", "192.0.2.1\n")
	now := time.Unix(1_800_000_000, 0)
	var logs strings.Builder
	s := &Stage{now: func() time.Time { return now },
		log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{ReplaceAttr: dropTime}))}
	if err := s.Configure(context.Background(), sdk.Env{ConfigDir: dir}, map[string]any{
		"deny": map[string]any{"files": []any{"deny.txt"}}, "reload_interval": "10s"}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "deny.txt", "192.0.2.1\n999.1.1.1/garbage\n192.0.2.6\n")
	for range 3 {
		now = now.Add(11 * time.Second)
		if v := check(t, s, "192.0.2.6", "").Verdict; v != sdk.VerdictNone {
			t.Fatalf("an entry of the refused file took effect: %s", v)
		}
	}
	want := `level=ERROR msg="connfilter: changed list file refused, keeping the previous lists" ` +
		`error="` + p + `:2: bad CIDR \"999.1.1.1/garbage\"" changed=` + p + "\n"
	if logs.String() != want {
		t.Fatalf("log after a refused change:\n%s\nwant:\n%s", logs.String(), want)
	}
	logs.Reset()
	writeFile(t, dir, "deny.txt", "192.0.2.1\n192.0.2.6\n")
	now = now.Add(11 * time.Second)
	if v := check(t, s, "192.0.2.6", "").Verdict; v != sdk.VerdictFail {
		t.Fatalf("the fixed file was not loaded: %s", v)
	}
	if want := `level=INFO msg="connfilter: changed list files loaded" changed=` + p + "\n"; logs.String() != want {
		t.Fatalf("log after the fix:\n%s\nwant:\n%s", logs.String(), want)
	}
}

// dropTime leaves the time out of log lines, for comparing them whole.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// TestIDNHostPatterns: host names in DNS are A-labels (xn--...), so a
// pattern written with Unicode letters must be compared in that form.
func TestIDNHostPatterns(t *testing.T) {
	s := newStage(t, t.TempDir(), map[string]any{"deny": []any{"*.Bücher.example", "host:mail.münchen.example."}})
	for _, host := range []string{"mx.xn--bcher-kva.example", "MAIL.xn--mnchen-3ya.example"} {
		if res := check(t, s, "192.0.2.1", host); res.Verdict != sdk.VerdictFail {
			t.Errorf("%s: %s %v", host, res.Verdict, res.Attrs)
		}
	}
	if err := New().Configure(context.Background(), sdk.Env{}, map[string]any{"deny": []any{"host:b*ü.example"}}); err == nil {
		t.Error("a glob inside a Unicode label was accepted")
	}
}

// TestHostPatternOrder: when several host patterns match, the first one
// written is the entry reported, whatever its kind.
func TestHostPatternOrder(t *testing.T) {
	l := newList("deny")
	for _, e := range []string{"mx?.example", "*.b.example", "a.b.example", "*.example", "host:a.B.example."} {
		if err := l.add(e); err != nil {
			t.Fatal(err)
		}
	}
	ip := netip.MustParseAddr("192.0.2.1")
	for host, want := range map[string]string{
		"a.b.example": "*.b.example", "A.B.EXAMPLE.": "*.b.example", "mx1.example": "mx?.example",
		"c.example": "*.example", "x.y.b.example": "*.b.example", "example": "", "b.example": "*.example",
		"a.b.example.org": "",
	} {
		if _, got := l.match(ip, host, ""); got != want {
			t.Errorf("%s: matched %q, want %q", host, got, want)
		}
	}
}

// TestHostnameLookupFailed: a client whose name is unknown because the
// DNS failed (sdk.Conn.HostnameError) may be one a deny host pattern
// names: the stage errs (on_error decides, a 4xx by default) instead of
// letting it through as a client with no name. A deny that matches
// otherwise still decides, and without deny host patterns nothing changes.
func TestHostnameLookupFailed(t *testing.T) {
	failed := func(s *Stage, ip string) (*sdk.Result, error) {
		return s.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseConnect,
			Conn: sdk.Conn{IP: ip, HostnameError: "PTR 192.0.2.8: SERVFAIL"}})
	}
	s := newStage(t, t.TempDir(), map[string]any{"deny": []any{"*.dyn.test", "192.0.2.66"}, "allow": []any{"mail.partner.test"}})
	if res, err := failed(s, "192.0.2.8"); err == nil || !strings.Contains(err.Error(), "reverse DNS lookup failed") {
		t.Errorf("deny host pattern, lookup failed: %+v, %v; want an error", res, err)
	}
	if res, err := failed(s, "192.0.2.66"); err != nil || res.Verdict != sdk.VerdictFail {
		t.Errorf("denied by address, lookup failed: %+v, %v; want fail", res, err)
	}
	if res := check(t, s, "192.0.2.9", ""); res.Verdict != sdk.VerdictNone || res.Attrs["hostname"] != "unknown" {
		t.Errorf("no name, the DNS answered: %+v; want none", res)
	}
	allowOnly := newStage(t, t.TempDir(), map[string]any{"allow": []any{"mail.partner.test"}})
	if res, err := failed(allowOnly, "192.0.2.8"); err != nil || res.Verdict != sdk.VerdictNone {
		t.Errorf("allow host pattern only, lookup failed: %+v, %v; want none (not allowed, no error)", res, err)
	}
}

// TestCountriesCutShort: a delegated-stats file that had records and is
// rewritten empty, or with its header only (a failed or interrupted
// download), is refused on a reload on change: the previous countries stay
// in force, with reload_error. Loaded, it left every client without a
// country and country: entries matching no one. A file that loads again
// is taken; a gateway reload (Configure) takes the files as they are.
func TestCountriesCutShort(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "apnic.txt", delegated)
	now := time.Unix(1_800_000_000, 0)
	s := &Stage{now: func() time.Time { return now }, log: slog.New(slog.DiscardHandler)}
	cfg := map[string]any{"deny": []any{"country:CN"}, "countries": []any{"apnic.txt"}, "reload_interval": "10s"}
	if err := s.Configure(context.Background(), sdk.Env{ConfigDir: dir}, cfg); err != nil {
		t.Fatal(err)
	}
	header := "2|apnic|20261127|3|19830613|20261126|+0900\napnic|*|ipv4|*|2|summary\n"
	for i, text := range []string{"", header} {
		writeFile(t, dir, "apnic.txt", text)
		mt := time.Now().Add(time.Duration(i+1) * time.Hour)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
		now = now.Add(11 * time.Second)
		res := check(t, s, "203.0.113.130", "")
		if res.Verdict != sdk.VerdictFail || res.Attrs["country"] != "CN" || !strings.Contains(res.Attrs["reload_error"], "no ipv4 or ipv6 records any more") {
			t.Fatalf("file of %d bytes: %s %v", len(text), res.Verdict, res.Attrs)
		}
	}
	writeFile(t, dir, "apnic.txt", strings.Replace(delegated, "|CN|", "|JP|", 1))
	now = now.Add(11 * time.Second)
	if res := check(t, s, "203.0.113.130", ""); res.Verdict != sdk.VerdictNone || res.Attrs["country"] != "JP" || res.Attrs["reload_error"] != "" {
		t.Fatalf("a file with records again: %s %v", res.Verdict, res.Attrs)
	}
	writeFile(t, dir, "apnic.txt", header)
	if err := s.Configure(context.Background(), sdk.Env{ConfigDir: dir}, cfg); err != nil {
		t.Fatal(err)
	}
	if res := check(t, s, "203.0.113.130", ""); res.Attrs["country"] != "" || res.Attrs["reload_error"] != "" {
		t.Fatalf("after Configure with an empty file: %s %v", res.Verdict, res.Attrs)
	}
}
