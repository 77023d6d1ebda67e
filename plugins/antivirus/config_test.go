package antivirus

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
)

// TestConfigMessages: a refused config names the key, as the other stages'
// errors do, and never a Go type or a line of a re-marshalled map.
func TestConfigMessages(t *testing.T) {
	noexec := filepath.Join(t.TempDir(), "scan") // there, but no one may run it
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  map[string]any
		want string
	}{
		{"unknown key", map[string]any{"clamd": "/s", "sock": "x"},
			`unknown key "sock" (want clamd, command, temp_dir, timeout, chunk_size)`},
		{"misspelt key", map[string]any{"clamd": "/s", "Timout": "5s"},
			`unknown key "Timout" (want clamd, command, temp_dir, timeout, chunk_size) (did you mean "timeout"?)`},
		{"clamd a list", map[string]any{"clamd": []any{"/s"}}, `clamd: want a string, got a list`},
		{"command a string", map[string]any{"command": "scan {file}"}, `command: want a list of strings, got "scan {file}"`},
		{"command arg a map", map[string]any{"command": []any{"scan", map[string]any{"a": 1}, "{file}"}},
			`command[1]: want a string, got a map`},
		{"timeout a number", map[string]any{"clamd": "/s", "timeout": 30},
			`timeout: want a duration such as "5s", "10m" or "35d", got 30`},
		{"timeout zero", map[string]any{"clamd": "/s", "timeout": "0s"}, `timeout: want a positive duration, got 0s`},
		{"chunk a string", map[string]any{"clamd": "/s", "chunk_size": "64k"}, `chunk_size: want a whole number from 1024 to 16777216, got "64k"`},
		{"chunk small", map[string]any{"clamd": "/s", "chunk_size": 10}, `chunk_size: want a whole number from 1024 to 16777216, got 10`},
		{"none", map[string]any{}, `exactly one of clamd and command is required`},
		{"no placeholder", map[string]any{"command": []any{"x"}}, `command: no {file} placeholder for the file to scan`},
		{"tcp without port", map[string]any{"clamd": "tcp:nohost"}, `clamd: "tcp:nohost": want tcp:HOST:PORT (a host and a port)`},
		{"tcp without host", map[string]any{"clamd": "tcp::3310"}, `clamd: "tcp::3310": want tcp:HOST:PORT (a host and a port)`},
		{"tcp port zero", map[string]any{"clamd": "tcp:localhost:0"}, `clamd: "tcp:localhost:0": invalid port "0" (want 1 to 65535)`},
		{"host:port out of range", map[string]any{"clamd": "localhost:99999"}, `clamd: "localhost:99999": invalid port "99999" (want 1 to 65535)`},
		{"host:port named port", map[string]any{"clamd": "localhost:clamd"}, `clamd: "localhost:clamd": invalid port "clamd" (want 1 to 65535)`},
		{"unix without path", map[string]any{"clamd": "unix:"}, `clamd: "unix:" names no socket (want unix:PATH)`},
		{"IPv4 alone", map[string]any{"clamd": "127.0.0.1"},
			`clamd: "127.0.0.1" is an address without a port (it would be read as a socket file); write tcp:127.0.0.1:PORT for clamd's TCPSocket (3310 by default)`},
		{"IPv6 alone", map[string]any{"clamd": "::1"},
			`clamd: "::1" is an address without a port (it would be read as a socket file); write tcp:[::1]:PORT for clamd's TCPSocket (3310 by default)`},
		{"missing program", map[string]any{"command": []any{"/no/such/scanner", "{file}"}}, `command[0]: /no/such/scanner: no such file or directory`},
		{"program not in PATH", map[string]any{"command": []any{"no-such-scanner-portcullis", "{file}"}},
			`command[0]: "no-such-scanner-portcullis" is not an executable in PATH`},
		{"program empty", map[string]any{"command": []any{"", "{file}"}}, `command[0]: the program must not be empty`},
		{"program a directory", map[string]any{"command": []any{"/", "{file}"}}, `command[0]: / is not a regular file`},
		{"program not executable", map[string]any{"command": []any{noexec, "{file}"}}, `command[0]: ` + noexec + ` is not executable`},
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
// with the same meaning: numbers among a command's arguments, null values
// (a key left empty keeps its default), a whole float as chunk_size.
func TestConfigAccepted(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "scan"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  map[string]any
		want config
	}{
		{"clamd", map[string]any{"clamd": "/run/clamd.ctl"},
			config{Clamd: "/run/clamd.ctl", Timeout: 30 * time.Second, ChunkSize: 64 << 10}},
		{"command with numbers", map[string]any{"command": []any{"bin/scan", "--max", 10, 1.5, true, nil, "{file}"}, "temp_dir": "tmp"},
			config{Command: []string{filepath.Join(dir, "bin/scan"), "--max", "10", "1.5", "true", "{file}"}, TempDir: filepath.Join(dir, "tmp"),
				Timeout: 30 * time.Second, ChunkSize: 64 << 10}},
		{"command in PATH", map[string]any{"command": []any{"sh", "{file}"}},
			config{Command: []string{"sh", "{file}"}, Timeout: 30 * time.Second, ChunkSize: 64 << 10}},
		{"host:port", map[string]any{"clamd": "[::1]:3310"},
			config{Clamd: "[::1]:3310", Timeout: 30 * time.Second, ChunkSize: 64 << 10}},
		{"socket file in the config's directory", map[string]any{"clamd": "clamd.sock"},
			config{Clamd: "clamd.sock", Timeout: 30 * time.Second, ChunkSize: 64 << 10}},
		{"nulls", map[string]any{"clamd": "/s", "command": nil, "temp_dir": nil, "timeout": nil, "chunk_size": nil},
			config{Clamd: "/s", Timeout: 30 * time.Second, ChunkSize: 64 << 10}},
		{"every key", map[string]any{"clamd": "tcp:127.0.0.1:3310", "temp_dir": "/var/tmp", "timeout": "50s", "chunk_size": 2048.0},
			config{Clamd: "tcp:127.0.0.1:3310", TempDir: "/var/tmp", Timeout: 50 * time.Second, ChunkSize: 2048}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := parseConfig(tc.cfg, dir); err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("config\n %+v, %v\nwant\n %+v", got, err, tc.want)
			}
		})
	}
}

// notPlain matches what no config error should show the admin: a Go type
// name or a line number of a re-marshalled map.
var notPlain = regexp.MustCompile(`line |antivirus\.|interface|yaml`)

// TestConfigMessagesPlain: whatever the mistake, no Go type name and no
// line number of a re-marshalled map reaches the admin.
func TestConfigMessagesPlain(t *testing.T) {
	for _, v := range []any{"x", 1, 2.5, true, []any{1}, map[string]any{"a": 1}} {
		for _, k := range []string{"clamd", "command", "temp_dir", "timeout", "chunk_size", "bogus"} {
			err := New().Configure(context.Background(), sdk.Env{}, map[string]any{"clamd": "/s", k: v})
			if err != nil && notPlain.MatchString(err.Error()) {
				t.Errorf("%s: %v: %v", k, v, err)
			}
		}
	}
}
