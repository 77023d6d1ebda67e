package bayes

import (
	"slices"
	"strings"
	"testing"
)

// listMail is a ham from a mailing list: the list's name is written into
// ten fields.
const listMail = "From: Gerry <gerry@example.com>\r\n" +
	"To: <mice@crackmice.example>\r\n" +
	"Subject: people we know\r\n" +
	"Message-Id: <1@mail.example.com>\r\n" +
	"Sender: crackmice-admin@crackmice.example\r\n" +
	"Errors-To: crackmice-admin@crackmice.example\r\n" +
	"X-Beenthere: crackmice@crackmice.example\r\n" +
	"Precedence: bulk\r\n" +
	"Reply-To: mice@crackmice.example\r\n" +
	"List-Id: <crackmice.crackmice.example>\r\n" +
	"List-Post: <mailto:crackmice@crackmice.example>\r\n" +
	"List-Help: <mailto:crackmice-request@crackmice.example?subject=help>\r\n" +
	"List-Archive: <http://crackmice.example/pipermail/crackmice/>\r\n" +
	"\r\nfirst of a very short series\r\n"

// TestShareAddr: with ShareAddr, the list name in ten fields is one token
// per word, not one per word and field; the presence tokens per field stay.
func TestShareAddr(t *testing.T) {
	count := func(opt TokenizerOptions) (n int, got []string) {
		got = NewTokenizer(opt).Tokens(parseDoc([]byte(listMail)))
		for _, tk := range got {
			if strings.HasSuffix(tk, ":crackmice.example") {
				n++
			}
		}
		return n, got
	}
	opt := DefaultTokenizerOptions()
	n, got := count(opt)
	if n != 1 || !slices.Contains(got, "h:crackmice.example") {
		t.Errorf("ShareAddr: %d tokens for crackmice.example, want 1 (h:crackmice.example): %q", n, got)
	}
	for _, w := range []string{"hdr:list-post", "hdr:errors-to", "hdr:rt", "f:example.com", "s:people", "h:mail.example.com"} {
		if !slices.Contains(got, w) {
			t.Errorf("missing %q in %q", w, got)
		}
	}
	opt.ShareAddr = false
	if n, got := count(opt); n < 8 {
		t.Errorf("ShareAddr off: %d tokens for crackmice.example, want one per field: %q", n, got)
	}
}

func TestSharedField(t *testing.T) {
	tests := []struct {
		key  string
		want bool
	}{
		{"list-unsubscribe", true}, {"sender", true}, {"to", true}, {"x-beenthere", true}, {"message-id", true},
		{"subject", false}, {"from", false}, {"content-type", false}, {"x-mailer", false}, {"received", false},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := sharedField(tt.key); got != tt.want {
				t.Errorf("sharedField(%q) = %v, want %v", tt.key, got, tt.want)
			}
		})
	}
}

// TestHeaderOrder: one token per adjacent pair of field names, in order,
// skipping Received and the site's own fields.
func TestHeaderOrder(t *testing.T) {
	raw := "Received: from a by b\r\nFrom: a@example.com\r\nDelivered-To: me@example.org\r\n" +
		"X-Mailer: Foo\r\nSubject: hi\r\nX-Spam-Level: ***\r\n\r\nbody text\r\n"
	tok := NewTokenizer(DefaultTokenizerOptions())
	var got []string
	for _, tk := range tok.Tokens(parseDoc([]byte(raw))) {
		if strings.HasPrefix(tk, "ho:") {
			got = append(got, tk)
		}
	}
	want := []string{"ho:^>from", "ho:from>x-mailer", "ho:x-mailer>subject"}
	if !slices.Equal(got, want) {
		t.Errorf("order tokens %q, want %q", got, want)
	}
	opt := DefaultTokenizerOptions()
	opt.HdrOrder = false
	for _, tk := range NewTokenizer(opt).Tokens(parseDoc([]byte(raw))) {
		if strings.HasPrefix(tk, "ho:") {
			t.Errorf("HdrOrder off but got %q", tk)
		}
	}
}
