package connfilter

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/portcullis-mta/portcullis/sdk"
)

// filterSet is everything one load of the config produced.
type filterSet struct {
	deny, allow *list
	countries   *Countries // nil when no delegated files are configured
	hostNeeded  bool       // some list has host patterns
	// countryRecords is the number of address records each delegated
	// file gave, for lostCountries.
	countryRecords map[string]int
}

// build reads every list and delegated-stats file of cfg.
func build(cfg config) (*filterSet, error) {
	if err := missingFiles(cfg); err != nil {
		return nil, err
	}
	fs := &filterSet{deny: newList("deny"), allow: newList("allow")}
	for _, lc := range []struct {
		l   *list
		cfg listConfig
	}{{fs.deny, cfg.deny}, {fs.allow, cfg.allow}} {
		for _, e := range lc.cfg.entries {
			if err := lc.l.add(e); err != nil {
				return nil, fmt.Errorf("%s: %v", lc.l.name, err)
			}
		}
		for _, f := range lc.cfg.files {
			if err := readList(f, lc.l, fs); err != nil {
				return nil, err
			}
		}
	}
	for _, f := range cfg.filters {
		if err := readList(f, nil, fs); err != nil {
			return nil, err
		}
	}
	if len(cfg.countries) > 0 {
		var b CountryBuilder
		fs.countryRecords = map[string]int{}
		for _, f := range cfg.countries {
			fh, err := os.Open(f)
			if err != nil {
				return nil, fmt.Errorf("countries: %v", err)
			}
			before := len(b.v4) + len(b.v6)
			err = b.Parse(f, fh)
			fh.Close()
			if err != nil {
				return nil, err
			}
			fs.countryRecords[f] += len(b.v4) + len(b.v6) - before
		}
		fs.countries = b.Build()
	}
	fs.hostNeeded = fs.deny.nHosts+fs.allow.nHosts > 0
	return fs, nil
}

// missingFiles names every file of cfg that does not exist, with its key,
// so that a config copied without its lists is fixed in one go rather
// than a file per attempt.
func missingFiles(cfg config) error {
	var missing []string
	for _, group := range []struct {
		key   string
		files []string
	}{{"deny.files", cfg.deny.files}, {"allow.files", cfg.allow.files}, {"filters", cfg.filters}, {"countries", cfg.countries}} {
		for _, f := range group.files {
			if _, err := os.Stat(f); errors.Is(err, os.ErrNotExist) {
				missing = append(missing, f+" ("+group.key+")")
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("no such file: %s", strings.Join(missing, ", "))
}

// lostCountries refuses a reload on change in which a delegated-stats
// file that gave address records gives none. A registry's file always has
// some; one that is empty, or holds only its header, is a download cut
// short or failed (wget -O truncates the file before it fetches). Loaded,
// it would leave every client without a country, and country: entries
// matching no one, until the next download, with only an INFO line to say
// so. A file that never had records (as examples/lists/delegated-latest)
// still loads as it is, and a reload of the gateway (SIGHUP) takes the
// files as they are.
func lostCountries(cfg config, old, cur *filterSet) error {
	if old == nil {
		return nil
	}
	for _, f := range cfg.countries {
		if old.countryRecords[f] > 0 && cur.countryRecords[f] == 0 {
			return fmt.Errorf("countries: %s: no ipv4 or ipv6 records any more (had %d): a download cut short?", f, old.countryRecords[f])
		}
	}
	return nil
}

func readList(path string, own *list, fs *filterSet) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return parseListFile(path, f, own, fs.deny, fs.allow)
}

// check decides one client: deny first, then allow.
func (fs *filterSet) check(ip netip.Addr, host, hostErr string) (*sdk.Result, error) {
	attrs := map[string]string{}
	cc := ""
	if fs.countries != nil {
		cc = fs.countries.Lookup(ip)
		attrs["country"] = cc
	}
	if fs.hostNeeded && host == "" {
		attrs["hostname"] = "unknown"
	}
	for _, l := range []*list{fs.deny, fs.allow} {
		match, entry := l.match(ip, host, cc)
		if entry == "" {
			if l == fs.deny && l.nHosts > 0 && host == "" && hostErr != "" {
				// The client's name is unknown because the DNS failed:
				// a deny pattern might have matched it. Not an allow:
				// the stage errs, and on_error decides (a 4xx).
				return nil, fmt.Errorf("connfilter: deny host patterns cannot be matched: reverse DNS lookup failed: %s", hostErr)
			}
			continue
		}
		attrs["list"], attrs["entry"], attrs["match"] = l.name, entry, match
		v := sdk.VerdictFail
		if l.name == "allow" {
			v = sdk.VerdictPass
		}
		return &sdk.Result{Verdict: v, Tags: []string{l.name}, Attrs: attrs,
			Reason: fmt.Sprintf("%s list: %s", l.name, entry)}, nil
	}
	return &sdk.Result{Verdict: sdk.VerdictNone, Attrs: attrs}, nil
}

func (l *list) match(ip netip.Addr, host, cc string) (what, entry string) {
	if e := l.matchIP(ip); e != "" {
		return "ip", e
	}
	if e := l.matchHost(host); e != "" {
		return "host", e
	}
	if e, ok := l.countries[cc]; ok && cc != "" {
		return "country", e
	}
	return "", ""
}
