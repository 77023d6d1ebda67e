package sdk

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/portcullis-mta/portcullis/sdk/internal/pb"
)

func TestInfoValidate(t *testing.T) {
	tests := []struct {
		name string
		info Info
		ok   bool
	}{
		{"good", Info{Name: "x", Phases: []Phase{PhaseConnect, PhaseData}}, true},
		{"no name", Info{Phases: []Phase{PhaseData}}, false},
		{"no phase", Info{Name: "x"}, false},
		{"unknown phase", Info{Name: "x", Phases: []Phase{"DATA"}}, false},
		{"repeated phase", Info{Name: "x", Phases: []Phase{PhaseData, PhaseData}}, false},
	}
	for _, tc := range tests {
		if err := tc.info.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

// TestResultSizeBound: MaxResultBytes counts the reason, tags, attribute
// keys and values and header edits, and allows exactly that many.
func TestResultSizeBound(t *testing.T) {
	tests := []struct {
		name string
		r    Result
		ok   bool
	}{
		{"reason at the bound", Result{Reason: strings.Repeat("r", MaxResultBytes)}, true},
		{"reason over", Result{Reason: strings.Repeat("r", MaxResultBytes+1)}, false},
		{"attrs over", Result{Attrs: map[string]string{"k": strings.Repeat("v", MaxResultBytes)}}, false},
		{"tags over", Result{Tags: []string{strings.Repeat("t", MaxResultBytes), "u"}}, false},
		{"header over", Result{Headers: []HeaderEdit{{Op: HeaderAdd, Name: "X", Value: strings.Repeat("v", MaxResultBytes)}}}, false},
	}
	for _, tc := range tests {
		if err := tc.r.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

func TestStageStatePath(t *testing.T) {
	for _, tc := range []struct{ state, want string }{
		{"/var/lib/portcullis/state.db", "/var/lib/portcullis/state.bayes.db"},
		{"/var/lib/portcullis/state", "/var/lib/portcullis/state.bayes"},
		{"", ""},
	} {
		if got := StageStatePath(tc.state, "bayes"); got != tc.want {
			t.Errorf("StageStatePath(%q) = %q, want %q", tc.state, got, tc.want)
		}
	}
}

// TestSetMessageBudgetDefault: n <= 0 is the default, not a budget of
// nothing that no read could ever get.
func TestSetMessageBudgetDefault(t *testing.T) {
	for _, n := range []int64{0, -1} {
		if b := useBudget(t, n); b.size != DefaultMessageBudget {
			t.Errorf("SetMessageBudget(%d): size %d, want %d", n, b.size, DefaultMessageBudget)
		}
	}
}

// TestCheckBoltFileBound: the file must hold every page its newest meta
// page names: exactly that is whole, one byte less is cut short.
func TestCheckBoltFileBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			return b.Put(fmt.Appendf(nil, "k%d", i), make([]byte, (i+1)*100000)) // each transaction grows the file
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// The newest meta page's high-water mark, read as bbolt does.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ps := int(binary.LittleEndian.Uint32(data[16+8:]))
	var need, newest, older uint64
	for _, off := range []int{0, ps} {
		m := data[off+16:]
		tx, hwm := binary.LittleEndian.Uint64(m[48:]), binary.LittleEndian.Uint64(m[40:])*uint64(ps)
		if tx > newest {
			newest, need = tx, hwm
		} else {
			older = hwm
		}
	}
	if older >= need {
		t.Fatalf("the older meta page names %d bytes, the newer %d: the test needs the file to have grown", older, need)
	}
	for _, size := range []uint64{need, need - 1} {
		if err := os.Truncate(path, int64(size)); err != nil {
			t.Fatal(err)
		}
		if err := CheckBoltFile(path); (err == nil) != (size == need) {
			t.Errorf("%d bytes of %d needed: %v", size, need, err)
		}
	}
}

type badResultStage struct{ readStage }

func (badResultStage) Check(context.Context, *Request) (*Result, error) {
	return &Result{Verdict: "spam"}, nil
}

// TestServeRefusesBadResult: a result rules cannot use is the call's
// error in the plugin, not a reply the host would read as verdict none.
func TestServeRefusesBadResult(t *testing.T) {
	srv := &stageServer{stage: badResultStage{}}
	out, err := srv.Check(context.Background(), &pb.CheckRequest{Phase: string(PhaseConnect)})
	if err == nil || !strings.Contains(err.Error(), `unknown verdict "spam"`) {
		t.Errorf("Check = %v, %v; want the verdict refused", out, err)
	}
}

// TestResultToPBValidUTF8: protobuf strings are UTF-8; a stage's invalid
// bytes go over as U+FFFD instead of failing the reply.
func TestResultToPBValidUTF8(t *testing.T) {
	out, err := resultToPB(&Result{Reason: "r\xff", Tags: []string{"t\xff"}, Attrs: map[string]string{"k": "v\xff"},
		Headers: []HeaderEdit{{Op: HeaderAdd, Name: "X", Value: "h\xff"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := proto.Marshal(out); err != nil {
		t.Fatalf("reply does not marshal: %v", err)
	}
	if out.Reason != "r\uFFFD" || out.Tags[0] != "t\uFFFD" || out.Attrs["k"] != "v\uFFFD" || !utf8.ValidString(out.Headers[0].Value) {
		t.Errorf("reply %v", out)
	}
}
