package bayes

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/cespare/xxhash/v2"
)

// TokenizerOptions bounds and shapes the tokens of one message.
type TokenizerOptions struct {
	MinLen     int  // shortest word kept, in runes (CJK bigrams are exempt)
	MaxLen     int  // longer words become a "skip:" token recording their shape
	MaxTokens  int  // distinct tokens kept per message
	Bigrams    bool // also emit pairs of adjacent words (OSB distance 1, as rspamd)
	FoldCase   bool // lower-case words
	AllHeaders bool // tokenize every header field but the site-specific ones
	RawHTML    bool // tag names from the HTML source (Doc.HTML)
	HTMLAttrs  bool // with RawHTML, also presentational attributes and inline styles
	ShareAddr  bool // address and list fields' words share one prefix (see sharedField)
	HdrOrder   bool // a token per pair of adjacent header field names (see headerOrder)
}

// DefaultTokenizerOptions are the options chosen by k-fold cross-validation
// on the TRAIN split (cv_test.go; figures at spam_cutoff 0.9, 5-fold).
// Markup tokens from the HTML source cut missed spam from 33 to 27 of 1307;
// MinLen 4 (short words are mostly noise: "is", "to", "the", base64
// debris) cut them further (MinLen 3 and 4 with mailbox headers excluded:
// 26 and 21; 10-fold: 25 and 21, FP 6 and 5 of 2948); bigrams and
// all-header tokens each pay their way (without them FN rises to 41 and 39).
//
// ShareAddr and HdrOrder (issue 7) were chosen by 5-fold CV repeated over
// five fold shuffles (BAYES_SEEDS=5, errors summed over the 5 x 4255
// out-of-fold scores): at 0.9, FP 34 -> 26 and FN 120 -> 121 (ShareAddr
// alone 31/116 without HdrOrder; HdrOrder alone 31/118).
func DefaultTokenizerOptions() TokenizerOptions {
	return TokenizerOptions{MinLen: 4, MaxLen: 40, MaxTokens: 4000, Bigrams: true, FoldCase: true, AllHeaders: true,
		RawHTML: true, HTMLAttrs: true, ShareAddr: true, HdrOrder: true}
}

// headerPrefixes says which header fields are tokenized, and under which
// prefix. Fields that reflect the receiving site rather than the sender
// (Delivered-To, X-Spam-*, our own headers) are left out on purpose: they
// teach the filter about the mailbox, not about spam.
var headerPrefixes = map[string]string{
	"subject":      "s",
	"from":         "f",
	"reply-to":     "rt",
	"to":           "t",
	"cc":           "cc",
	"return-path":  "rp",
	"sender":       "snd",
	"message-id":   "mid",
	"content-type": "ct",
	"x-mailer":     "xm",
	"user-agent":   "xm",
	"list-id":      "lid",
	"organization": "org",
}

// Tokenizer turns a decoded message into its distinct tokens.
type Tokenizer struct {
	opt TokenizerOptions
}

// NewTokenizer returns a tokenizer with opt.
func NewTokenizer(opt TokenizerOptions) *Tokenizer { return &Tokenizer{opt: opt} }

// tokenSet collects distinct tokens up to a bound, in first-seen order:
// as strings (Tokens), or only as store keys (Keys, the classifying path),
// where a token made of parts is hashed part by part instead of being
// built, and distinct means a distinct key, which is all the store sees.
type tokenSet struct {
	seen  map[string]struct{}
	order []string
	max   int

	keysOnly bool
	keySeen  keySet
	keys     []Key
	buf      []byte // addParts builds a token here to hash it in one go
	low      [2][]byte
	lowNext  int
}

// lower is strings.ToLower, but on the key path an ASCII word with upper
// case goes to one of two scratch buffers in turn instead of a new string:
// the words tokenizer keeps one word back (for pairs) while it lowers the
// next. Tokens are never kept on that path, only their keys.
func (s *tokenSet) lower(w string) string {
	if !s.keysOnly {
		return strings.ToLower(w)
	}
	upper := false
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c >= utf8.RuneSelf {
			return strings.ToLower(w)
		}
		upper = upper || 'A' <= c && c <= 'Z'
	}
	if !upper {
		return w
	}
	b := s.low[s.lowNext][:0]
	for i := 0; i < len(w); i++ {
		c := w[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	s.low[s.lowNext] = b
	s.lowNext ^= 1
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func (s *tokenSet) add(t string) {
	if s.keysOnly {
		s.addKey(KeyOf(t))
		return
	}
	if len(s.order) >= s.max {
		return
	}
	if _, ok := s.seen[t]; ok {
		return
	}
	s.seen[t] = struct{}{}
	s.order = append(s.order, t)
}

// addParts adds the token a+b+c+d without building it when only keys are kept.
func (s *tokenSet) addParts(a, b, c, d string) {
	if !s.keysOnly {
		s.add(a + b + c + d)
		return
	}
	buf := append(s.buf[:0], a...)
	buf = append(buf, b...)
	buf = append(buf, c...)
	s.buf = append(buf, d...)
	s.addKey(Key(xxhash.Sum64(s.buf)))
}

func (s *tokenSet) addKey(k Key) {
	if len(s.keys) >= s.max {
		return
	}
	if s.keySeen.insert(k) {
		s.keys = append(s.keys, k)
	}
}

// Tokens returns the distinct tokens of d: header words with a per-field
// prefix, body words, CJK character bigrams, URL hosts with their parent
// domains, and (with Bigrams) adjacent word pairs.
func (t *Tokenizer) Tokens(d *Doc) []string {
	set := &tokenSet{seen: make(map[string]struct{}, 512), max: t.opt.MaxTokens}
	t.fill(set, d)
	return set.order
}

// setPool recycles key sets: classifying thousands of messages a second,
// growing a fresh table for each one was a good part of the work.
var setPool = sync.Pool{New: func() any {
	return &tokenSet{keysOnly: true, buf: make([]byte, 0, 256)}
}}

// Keys returns the store keys of the distinct tokens of d: KeyOf of each
// of Tokens(d), in the same order.
func (t *Tokenizer) Keys(d *Doc) []Key {
	set := setPool.Get().(*tokenSet)
	set.max = t.opt.MaxTokens
	t.fill(set, d)
	keys := slices.Clone(set.keys)
	set.keySeen.reset()
	set.keys = set.keys[:0]
	setPool.Put(set)
	return keys
}

func (t *Tokenizer) fill(set *tokenSet, d *Doc) {
	for _, f := range d.Header {
		t.header(set, f.Name, f.Value)
	}
	if t.opt.HdrOrder {
		t.headerOrder(set, d)
	}
	for _, f := range d.Findings {
		set.add("mime:" + f)
	}
	for _, p := range d.Parts {
		t.part(set, p)
	}
	if t.opt.RawHTML {
		for _, h := range d.HTML {
			t.markup(set, h)
		}
	}
}

func (t *Tokenizer) header(set *tokenSet, name, value string) {
	key := strings.ToLower(name)
	prefix, ok := headerPrefixes[key]
	if !ok {
		if !t.opt.AllHeaders || siteHeader(key) {
			return
		}
		prefix = key
	}
	set.add("hdr:" + prefix)
	if t.opt.ShareAddr && sharedField(key) {
		prefix = sharedPrefix
	}
	prefix += ":"
	if key == "message-id" || key == "return-path" {
		if at := strings.LastIndexByte(value, '@'); at >= 0 {
			value = value[at+1:]
		}
	}
	t.words(set, prefix, value, key == "subject")
}

func (t *Tokenizer) part(set *tokenSet, p Part) {
	set.add("ct:" + p.ContentType)
	if p.Filename != "" {
		if dot := strings.LastIndexByte(p.Filename, '.'); dot >= 0 {
			set.add("fn:" + strings.ToLower(p.Filename[dot:]))
		}
	}
	text := p.Text
	if text == "" {
		return
	}
	if p.HTML {
		var links, tags []string
		text, links, tags = stripHTML(text)
		for _, l := range links {
			t.url(set, l)
		}
		for _, tag := range tags {
			set.add("tag:" + tag)
		}
	}
	for _, u := range findURLs(text) {
		t.url(set, u)
	}
	t.words(set, "", text, t.opt.Bigrams)
}

// words emits the words of s with prefix; pairs adds adjacent word pairs.
// Widths are folded first (foldWidth): ＦＲＥＥ is free, ﾊﾟｽﾜｰﾄﾞ パスワード.
func (t *Tokenizer) words(set *tokenSet, prefix, s string, pairs bool) {
	s = foldWidth(s)
	prev := ""
	emit := func(w string) {
		set.addParts(prefix, w, "", "")
		if pairs && prev != "" {
			set.addParts(prefix, prev, " ", w)
		}
		prev = w
	}
	for len(s) > 0 {
		if c := s[0]; c < utf8.RuneSelf && !asciiWord(c) {
			s = s[1:] // spaces and punctuation, the common case
			continue
		}
		r, size := utf8.DecodeRuneInString(s)
		switch {
		case isCJK(r):
			n := cjkRun(s)
			t.cjk(set, prefix, s[:n])
			s = s[n:]
			prev = ""
		case isWordRune(r):
			n := wordRun(s)
			if w, ok := t.word(set, s[:n]); ok {
				emit(w)
			}
			s = s[n:]
		default:
			s = s[size:]
		}
	}
}

// word normalises one word and applies the length bounds. On the key path
// the lower-cased word may live in the set's scratch (see tokenSet.lower):
// it is valid until the second word after it.
func (t *Tokenizer) word(set *tokenSet, w string) (string, bool) {
	for len(w) > 0 {
		if c := w[len(w)-1]; c == '.' || c == '-' || c == '\'' || c == '_' {
			w = w[:len(w)-1]
			continue
		}
		break
	}
	if len(w) < t.opt.MinLen { // fewer bytes, so fewer runes too
		return "", false
	}
	n := utf8.RuneCountInString(w)
	if n < t.opt.MinLen {
		return "", false
	}
	if n > t.opt.MaxLen {
		// The shape of an overlong run (base64 blobs, tracking ids) is
		// evidence, its content is noise: SpamAssassin's "sk:" idea.
		first, _ := utf8.DecodeRuneInString(w)
		return "skip:" + string(first) + strconv.Itoa(n/10*10), true
	}
	if t.opt.FoldCase {
		w = set.lower(w)
	}
	return w, true
}

// cjk emits character bigrams of a run of Han, kana or Hangul: Japanese
// and Chinese have no spaces, so bigrams stand in for words. The run may
// hold the line breaks and spaces that split it (cjkRun): they are not
// characters.
func (t *Tokenizer) cjk(set *tokenSet, prefix, run string) {
	var prev rune = -1
	for _, r := range run {
		if r == '\r' || r == '\n' || r == ' ' || r == '\t' || r == '\u3000' {
			continue
		}
		if prev >= 0 {
			set.add(prefix + string(prev) + string(r))
		}
		prev = r
	}
	if prev >= 0 && utf8.RuneLen(prev) == len(run) {
		set.add(prefix + run)
	}
}

func isCJK(r rune) bool {
	if r < 0x2E80 { // below the CJK radicals: the common case, kept off the tables
		return false
	}
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul) || r == 'ー'
}

func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '$'
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

func asciiWord(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '$'
}

// cjkRun is the length of the run of CJK characters at the start of s.
// One line break or space between two of them does not end the run, as in
// textfilter: Japanese and Chinese put no space between words, mail wraps
// their lines anywhere, mid-word, and a spammer spaces them out (口座　確認)
// to break a word; the bigram across the gap must stay. A blank line (a
// paragraph) or two spaces do end it.
func cjkRun(s string) int {
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if isCJK(r) {
			i += size
			continue
		}
		gap := cjkGap(s[i:])
		if gap == 0 || i == 0 {
			return i
		}
		if next, _ := utf8.DecodeRuneInString(s[i+gap:]); !isCJK(next) {
			return i
		}
		i += gap
	}
	return i
}

// cjkGap is the length of the single line break (CRLF or LF) or space
// (ASCII, tab or ideographic) at the start of s, else 0.
func cjkGap(s string) int {
	switch {
	case strings.HasPrefix(s, "\r\n"):
		return 2
	case s[0] == '\n' || s[0] == ' ' || s[0] == '\t':
		return 1
	case strings.HasPrefix(s, "\u3000"):
		return len("\u3000")
	}
	return 0
}

// wordRun is the length of the word at the start of s: letters, digits and
// '$', joined by single inner '.', '-', '\” or '_' (so "e-mail", "3.50"
// and "don't" stay one word).
func wordRun(s string) int {
	i := 0
	for i < len(s) {
		if c := s[i]; asciiWord(c) {
			i++ // the common case, without decoding a rune
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if isWordRune(r) && !isCJK(r) {
			i += size
			continue
		}
		if (r == '.' || r == '-' || r == '\'' || r == '_') && i+1 < len(s) {
			next, _ := utf8.DecodeRuneInString(s[i+1:])
			if isWordRune(next) && !isCJK(next) {
				i += size
				continue
			}
		}
		break
	}
	return i
}

// siteHeader reports fields that describe the receiving site or an earlier
// filter's opinion rather than the message, and the mailbox bookkeeping a
// mail reader or local delivery adds after receipt (Status, X-Status,
// X-Keywords, X-UID, Delivery-Date, Content-Length, Lines). A gateway
// never sees the latter on mail arriving by SMTP, yet in a corpus saved
// from mailboxes they differ between the collections: in 5-fold CV on
// TRAIN they were worth 6 of 1307 spam, a gain that would not exist in
// production, so they are not learned.
func siteHeader(key string) bool {
	switch key {
	case "delivered-to", "x-original-to", "status", "x-status", "x-keywords", "x-uid",
		"delivery-date", "content-length", "lines", "x-mozilla-status", "x-mozilla-status2", "x-evolution":
		return true
	}
	return strings.HasPrefix(key, "x-spam") || strings.HasPrefix(key, "x-portcullis") || strings.HasPrefix(key, "x-bogosity")
}

// keySet is a set of keys by open addressing. The keys are xxhash values,
// already well mixed, so their low bits index the table directly: no
// hashing again, unlike a map, where this set was a good part of the cost
// of tokenizing.
type keySet struct {
	slots []Key // 0 is empty; key 0 itself is kept in zero
	n     int
	zero  bool
}

// keySetMin is the starting size, kept at most half full: 2,048 distinct
// tokens before it grows, more than most messages have.
const keySetMin = 4096

// insert adds k and reports whether it was new.
func (h *keySet) insert(k Key) bool {
	if k == 0 {
		added := !h.zero
		h.zero = true
		return added
	}
	if 2*(h.n+1) > len(h.slots) {
		h.grow()
	}
	mask := Key(len(h.slots) - 1)
	for i := k & mask; ; i = (i + 1) & mask {
		switch h.slots[i] {
		case k:
			return false
		case 0:
			h.slots[i] = k
			h.n++
			return true
		}
	}
}

func (h *keySet) grow() {
	old := h.slots
	h.slots = make([]Key, max(2*len(old), keySetMin))
	h.n = 0
	for _, k := range old {
		if k != 0 {
			h.insert(k)
		}
	}
}

// reset empties the set, keeping a table of the usual size.
func (h *keySet) reset() {
	if len(h.slots) > 4*keySetMin {
		h.slots = nil
	} else {
		clear(h.slots)
	}
	h.n, h.zero = 0, false
}
