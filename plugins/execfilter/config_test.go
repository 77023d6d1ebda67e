package execfilter

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
)

// TestConfigMessages: a refused config names the key, as the other stages'
// errors do, and never a Go type or a line of a re-marshalled map.
func TestConfigMessages(t *testing.T) {
	sig := func(m map[string]any) map[string]any { return map[string]any{"signatures": []any{m}} }
	tests := []struct {
		name string
		cfg  map[string]any
		want string
	}{
		{"unknown key", map[string]any{"limitz": 1},
			`unknown key "limitz" (want extensions, content_types, signatures, limits) (did you mean "limits"?)`},
		{"unknown limit", map[string]any{"limits": map[string]any{"max_entry": 10}},
			`limits: unknown key "max_entry" (want max_entries, max_entry_bytes, max_total_bytes, max_ratio, timeout)`},
		{"unknown signature key", sig(map[string]any{"name": "a", "hex": "00", "ofset": 1}),
			`signatures[0]: unknown key "ofset" (want name, hex, offset) (did you mean "offset"?)`},
		{"extensions a string", map[string]any{"extensions": "exe"}, `extensions: want a list of strings, got "exe"`},
		{"content type a list", map[string]any{"content_types": []any{"a/b", []any{"c"}}},
			`content_types[1]: want a string, got a list`},
		{"limits a list", map[string]any{"limits": []any{1}},
			`limits: want {max_entries, max_entry_bytes, max_total_bytes, max_ratio, timeout}, got a list`},
		{"signatures a map", map[string]any{"signatures": map[string]any{"name": "a"}},
			`signatures: want a list of {name, hex, offset}, got a map`},
		{"signature a string", map[string]any{"signatures": []any{"4d5a"}},
			`signatures[0]: want {name, hex, offset}, got "4d5a"`},
		{"zero limit", map[string]any{"limits": map[string]any{"max_ratio": 0}},
			`limits.max_ratio: want a whole number of at least 1, got 0`},
		{"limit a string", map[string]any{"limits": map[string]any{"max_entries": "many"}},
			`limits.max_entries: want a whole number of at least 1, got "many"`},
		{"limit a fraction", map[string]any{"limits": map[string]any{"max_total_bytes": 1.5}},
			`limits.max_total_bytes: want a whole number of at least 1, got 1.5`},
		{"timeout a number", map[string]any{"limits": map[string]any{"timeout": 5}},
			`limits.timeout: want a duration such as "5s", "10m" or "35d", got 5`},
		{"timeout zero", map[string]any{"limits": map[string]any{"timeout": "0s"}},
			`limits.timeout: want a positive duration, got 0s`},
		{"bad hex", sig(map[string]any{"name": "a", "hex": "zz"}), `signatures[0].hex: "zz" is not hex`},
		{"neg offset", sig(map[string]any{"name": "a", "hex": "00", "offset": -1}),
			`signatures[0].offset: want a whole number of at least 0, got -1`},
		{"no name", sig(map[string]any{"hex": "00"}),
			`signatures[0]: a unique name without spaces or ':' is required`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := New().Configure(context.Background(), sdk.Env{}, tc.cfg); fmt.Sprint(err) != tc.want {
				t.Errorf("error\n %v\nwant\n %s", err, tc.want)
			}
		})
	}
}

// TestConfigAccepted: configs the yaml-decoding parser took are still taken,
// with the same meaning: scalars where strings go (hex 9000 is a number to
// YAML), null values (a key left empty keeps its default; a null list is
// empty), whole floats where whole numbers go.
func TestConfigAccepted(t *testing.T) {
	def := DefaultLimits()
	tests := []struct {
		name string
		cfg  map[string]any
		exts []string
		lim  Limits
		sigs []signature
	}{
		{"nothing", nil, defaultExtensions, def, nil},
		{"scalars as strings",
			map[string]any{"extensions": []any{"EXE", 123, nil}, "signatures": []any{map[string]any{"name": 7, "hex": 9000}}},
			[]string{"EXE", "123"}, def, []signature{{name: "7", bytes: []byte{0x90, 0}, offset: -1}}},
		{"nulls",
			map[string]any{"extensions": nil, "limits": nil, "signatures": []any{map[string]any{"name": "a", "hex": "4d 5a", "offset": nil}}},
			nil, def, []signature{{name: "a", bytes: []byte("MZ"), offset: -1}}},
		{"null limits", map[string]any{"limits": map[string]any{"max_entries": nil, "timeout": nil}}, defaultExtensions, def, nil},
		{"every key",
			map[string]any{"extensions": []any{"js"}, "content_types": []any{"text/x-sh"},
				"signatures": []any{map[string]any{"name": "s", "hex": "7b5c", "offset": 2.0}},
				"limits":     map[string]any{"max_entries": 10, "max_entry_bytes": int64(1 << 40), "max_total_bytes": 3.0, "max_ratio": 7, "timeout": "1m"}},
			[]string{"js"}, Limits{MaxEntries: 10, MaxEntryBytes: 1 << 40, MaxTotalBytes: 3, MaxRatio: 7, Timeout: time.Minute},
			[]signature{{name: "s", bytes: []byte("{\\"), offset: 2}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseConfig(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.Extensions, tc.exts) || cfg.Limits != tc.lim || !reflect.DeepEqual(cfg.sigs, tc.sigs) {
				t.Errorf("got %q %+v %+v\nwant %q %+v %+v", cfg.Extensions, cfg.Limits, cfg.sigs, tc.exts, tc.lim, tc.sigs)
			}
		})
	}
}

// notPlain matches what no config error should show the admin: a Go type
// name or a line number of a re-marshalled map.
var notPlain = regexp.MustCompile(`line |execfilter\.|interface|yaml`)

// TestConfigMessagesPlain: whatever the mistake, no Go type name and no
// line number of a re-marshalled map reaches the admin.
func TestConfigMessagesPlain(t *testing.T) {
	for _, v := range []any{"x", 1, 2.5, true, []any{1}, map[string]any{"a": 1}} {
		for _, k := range []string{"extensions", "content_types", "signatures", "limits", "bogus"} {
			for _, cfg := range []map[string]any{{k: v}, {"limits": map[string]any{k: v}}} {
				err := New().Configure(context.Background(), sdk.Env{}, cfg)
				if err != nil && notPlain.MatchString(err.Error()) {
					t.Errorf("%v: %v", cfg, err)
				}
			}
		}
	}
}

// TestDefaultExtensionsOutlook: with the default config, a file named with
// any extension of Outlook's blocked list (the support article's table, as
// written out here, and the later additions) is an executable whatever its
// bytes, in any case, and an ordinary document is not.
func TestDefaultExtensionsOutlook(t *testing.T) {
	outlook := strings.Fields(`.ade .adp .app .appcontent-ms .application .appref-ms .asp .aspx .asx .bas .bat .bgi
		.cab .cdxml .cer .chm .cmd .cnt .com .cpl .crt .csh .der .diagcab .exe .fxp .gadget .grp .hlp .hpj .hta .htc
		.inf .ins .iso .isp .its .jar .jnlp .js .jse .ksh .library-ms .lnk .mad .maf .mag .mam .maq .mar .mas .mat
		.mau .mav .maw .mcf .mda .mdb .mde .mdt .mdw .mdz .msc .msh .msh1 .msh2 .mshxml .msh1xml .msh2xml .msi .msp
		.mst .msu .ops .osd .pcd .pif .pl .plg .prf .prg .printerexport .ps1 .ps1xml .ps2 .ps2xml .psc1 .psc2 .psd1
		.psdm1 .pssc .pst .py .pyc .pyo .pyw .pyz .pyzw .reg .scf .scr .sct .search-ms .settingcontent-ms .shb .shs
		.theme .tmp .udl .url .vb .vbe .vbp .vbs .vhd .vhdx .vsmacros .vsw .webpnp .website .ws .wsb .wsc .wsf .wsh
		.xbap .xll .xnk`)
	cfg, err := parseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	judged := func(name string) bool {
		in := newInspector(cfg)
		in.attachment(context.Background(), name, "application/octet-stream", []byte("plain words"))
		return in.tags[TagExecutable]
	}
	for _, e := range append(outlook, ".one", ".img", ".dll", ".psm1", ".sh", ".appinstaller", ".rdp", ".searchconnector-ms") {
		if !judged("invoice"+e) || !judged("INVOICE"+strings.ToUpper(e)) {
			t.Errorf("invoice%s is not judged an executable", e)
		}
	}
	for _, name := range []string{"report.pdf", "notes.txt", "photo.jpg", "sheet.xlsx", "letter.docx"} {
		if judged(name) {
			t.Errorf("%s is judged an executable", name)
		}
	}
}
