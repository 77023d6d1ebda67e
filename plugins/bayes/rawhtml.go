package bayes

import (
	"bytes"
	"io"
	"strings"

	"github.com/emersion/go-message"
)

// rawHTML returns the transfer-decoded source of the text/html parts of
// raw. The shared MIME walker (sdk/mime) hands out HTML already turned
// into text, which loses the markup; yet the markup is much of the
// evidence in HTML spam with little text (font colours and sizes, tables,
// images, hidden comments). Only messages whose walk found HTML come here,
// so plain-text mail pays nothing.
func rawHTML(raw []byte) []string {
	ent, err := message.Read(bytes.NewReader(raw))
	if ent == nil || (err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err)) {
		return nil
	}
	var out []string
	budget, parts := maxTextBytes, 0
	_ = ent.Walk(func(_ []int, e *message.Entity, err error) error {
		parts++
		if e == nil || parts > maxParts || budget <= 0 {
			return nil
		}
		if mt, _, _ := e.Header.ContentType(); mt != "text/html" {
			return nil
		}
		b, _ := io.ReadAll(io.LimitReader(e.Body, int64(min(maxPartBytes, budget))))
		budget -= len(b)
		out = append(out, string(b))
		return nil
	})
	return out
}

// markup emits tokens for the markup of an HTML source: each tag name
// ("tag:font"), selected presentational attributes with their values
// ("html:font:color=#ff0000"), the properties of inline styles
// ("css:font-size:10px") and the presence of comments, which spam uses to
// split words apart. Text and links come from the decoded part.
func (t *Tokenizer) markup(set *tokenSet, s string) {
	for len(s) > 0 {
		i := strings.IndexByte(s, '<')
		if i < 0 || i+1 >= len(s) {
			return
		}
		s = s[i+1:]
		if strings.HasPrefix(s, "!--") {
			set.add("html:comment")
			end := strings.Index(s, "-->")
			if end < 0 {
				return
			}
			s = s[end+3:]
			continue
		}
		end := strings.IndexByte(s, '>')
		if end < 0 {
			return
		}
		tag := s[:end]
		s = s[end+1:]
		if tag == "" || tag[0] == '/' || tag[0] == '!' || tag[0] == '?' {
			continue
		}
		name, attrs := splitTag(tag)
		if name == "" {
			continue
		}
		set.add("tag:" + name)
		if t.opt.HTMLAttrs {
			t.attrs(set, name, attrs)
		}
	}
}

// htmlAttrs are the attributes whose values are tokens, per tag; "*" for any tag.
var htmlAttrs = map[string][]string{
	"font":  {"color", "size", "face"},
	"table": {"width", "border", "bgcolor", "cellpadding", "cellspacing"},
	"td":    {"width", "bgcolor", "align"},
	"img":   {"width", "height", "border"},
	"body":  {"bgcolor", "text", "link"},
	"a":     {"target"},
	"p":     {"align"},
	"div":   {"align"},
	"input": {"type"},
	"form":  {"method"},
}

func (t *Tokenizer) attrs(set *tokenSet, name, attrs string) {
	low := strings.ToLower(attrs)
	for _, a := range htmlAttrs[name] {
		if v, ok := attrOf(low, a); ok {
			set.add("html:" + name + ":" + a + "=" + clip(v, 24))
		}
	}
	if v, ok := attrOf(low, "style"); ok {
		for _, decl := range strings.Split(v, ";") {
			prop, val, ok := strings.Cut(decl, ":")
			if !ok {
				continue
			}
			set.add("css:" + clip(strings.TrimSpace(prop), 24) + ":" + clip(strings.Join(strings.Fields(val), " "), 24))
		}
	}
}

// attrOf finds attribute key in a lower-cased attribute list.
func attrOf(low, key string) (string, bool) {
	for off := 0; ; {
		i := strings.Index(low[off:], key)
		if i < 0 {
			return "", false
		}
		start := off + i
		j := skipSpace(low, start+len(key))
		off = start + len(key)
		if start > 0 && isTagNameByte(low[start-1]) || j >= len(low) || low[j] != '=' {
			continue
		}
		return strings.TrimSpace(attrValue(low, skipSpace(low, j+1))), true
	}
}

// clip bounds a value taken from raw markup, which may be in any charset,
// and keeps the token valid UTF-8.
func clip(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "")
}
