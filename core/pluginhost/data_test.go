package pluginhost

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/plugintest"
)

// bigMessage is over gRPC's 4 MiB default message size.
func bigMessage(subject string) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.test\r\nSubject: " + subject + "\r\n\r\n")
	line := strings.Repeat("x", 76) + "\r\n"
	for b.Len() < 6<<20 {
		b.WriteString(line)
	}
	return b.Bytes()
}

// spooled writes raw into a file after a spool record header, as the
// spool does, and describes it by path and offset.
func spooled(t *testing.T, raw []byte) *sdk.Message {
	lead := []byte("X-Spool-Record: 1\n")
	path := filepath.Join(t.TempDir(), "q1")
	if err := os.WriteFile(path, append(lead, raw...), 0o600); err != nil {
		t.Fatal(err)
	}
	return sdk.NewFileMessage(plugintest.ParseHeader(raw), path, int64(len(lead)), int64(len(raw)))
}

func TestDataPhaseBigMessages(t *testing.T) {
	for _, mtls := range []bool{false, true} {
		t.Run("mtls="+strconv.FormatBool(mtls), func(t *testing.T) { testBigMessages(t, mtls) })
	}
}

func testBigMessages(t *testing.T, mtls bool) {
	h, _ := newHost(t, Options{AutoMTLS: mtls})
	mustLoad(t, h, faultSpec(t, "f", nil),
		Spec{Name: "hello", Plugin: helloBin(t), Config: map[string]any{"greeting": "hi there"}})
	raw := bigMessage("[tag-me] large")
	tests := []struct {
		name string
		msg  *sdk.Message
	}{
		{"from the spool file", spooled(t, raw)},
		{"from host memory", sdk.NewBytesMessage(plugintest.ParseHeader(raw), raw)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			req := &sdk.Request{Phase: sdk.PhaseData, QueueID: "Q1", Message: tt.msg}
			res, err := mustStage(t, h, "f").Check(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Attrs["read"]; got != strconv.Itoa(len(raw)) {
				t.Errorf("fault stage read %s bytes, want %d", got, len(raw))
			}
			res, err = mustStage(t, h, "hello").Check(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			body := len(raw) - bytes.Index(raw, []byte("\r\n\r\n")) - 4
			want := &sdk.Result{Verdict: sdk.VerdictPass, Tags: []string{"hello:tag"},
				Attrs:   map[string]string{"greeting": "hi there", "body_bytes": strconv.Itoa(body)},
				Headers: []sdk.HeaderEdit{{Op: sdk.HeaderAdd, Name: "X-Hello", Value: "hi there"}}}
			if !reflect.DeepEqual(res, want) {
				t.Errorf("hello result %+v, want %+v", res, want)
			}
		})
	}
}
