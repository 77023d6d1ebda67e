package plugintest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/mime"
)

// Message describes raw (a whole message, header and body) held in memory,
// as the host does for a message it has not spooled: the plugin reads the
// bytes back from the host through the protocol.
func Message(raw []byte) *sdk.Message {
	return sdk.NewBytesMessage(ParseHeader(raw), raw)
}

// FileMessage writes raw into a file in t.TempDir, after some leading bytes
// so that the offset matters, and describes it as the host describes a
// spooled message: the plugin opens the file itself.
func FileMessage(t testing.TB, raw []byte) *sdk.Message {
	t.Helper()
	lead := []byte("spool record header, not part of the message\n")
	path := filepath.Join(t.TempDir(), "msg.spool")
	if err := os.WriteFile(path, append(lead, raw...), 0o600); err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	return sdk.NewFileMessage(ParseHeader(raw), path, int64(len(lead)), int64(len(raw)))
}

// ParseHeader returns the top-level header fields of raw in order, values
// unfolded (RFC 5322 2.2.3) but not decoded, in UTF-8 as the gateway gives
// them: raw 8-bit bytes, as old Japanese mailers write Shift_JIS or EUC-JP
// unencoded, are decoded by mime.HeaderUTF8. It stops at the first empty
// line; a line that is neither a field nor a continuation ends the header
// too, as it would start the body of a malformed message.
func ParseHeader(raw []byte) []sdk.HeaderField {
	var out []sdk.HeaderField
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		// A bare CR (RFC 5322 forbids it) must not survive into a value.
		line = bytes.ReplaceAll(bytes.TrimSuffix(line, []byte("\r")), []byte("\r"), []byte(" "))
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(out) == 0 {
				break
			}
			out[len(out)-1].Value += " " + strings.TrimSpace(string(line))
			continue
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 || bytes.ContainsAny(name, " \t") {
			break
		}
		out = append(out, sdk.HeaderField{Name: string(name), Value: strings.TrimSpace(string(value))})
	}
	for i, f := range out {
		out[i] = sdk.HeaderField{Name: mime.HeaderUTF8(f.Name), Value: mime.HeaderUTF8(f.Value)}
	}
	return out
}
