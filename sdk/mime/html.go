package mime

import (
	"bytes"
	"strings"

	"golang.org/x/net/html"
)

// blockTags end a line of text, so words in adjacent cells do not run together.
var blockTags = map[string]bool{
	"br": true, "p": true, "div": true, "tr": true, "td": true, "th": true, "li": true,
	"h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true, "table": true,
	"blockquote": true, "hr": true, "title": true,
}

// htmlToText keeps the text a reader sees, entities decoded; script and
// style bodies are dropped, and link targets are kept before their text
// because a filter wants to match the URL too.
func htmlToText(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	var b strings.Builder
	skip := 0
	for {
		switch z.Next() {
		case html.ErrorToken:
			return strings.TrimSpace(b.String())
		case html.TextToken:
			if skip == 0 {
				b.Write(z.Text())
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			tag := string(name)
			if tag == "script" || tag == "style" {
				skip++
			}
			if blockTags[tag] {
				b.WriteByte('\n')
			}
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				if tag == "a" && string(k) == "href" {
					b.WriteString(" ")
					b.Write(v)
					b.WriteString(" ")
				}
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			tag := string(name)
			if (tag == "script" || tag == "style") && skip > 0 {
				skip--
			}
			if blockTags[tag] {
				b.WriteByte('\n')
			}
		}
	}
}

// metaPrescan is how far into an HTML part metaCharset looks. The WHATWG
// prescan reads 1024 bytes; mail generators (Outlook's namespaces, long
// style sheets before the meta) need a little more.
const metaPrescan = 4096

// metaCharset returns the charset an HTML document declares in its head,
// <meta charset=...> or <meta http-equiv="Content-Type" content="...;
// charset=...">, for a part whose Content-Type has none (HTML Living
// Standard 13.2.3.2). Tags are ASCII, so the bytes are tokenised as they are.
func (w *walker) metaCharset(b []byte) string {
	z := html.NewTokenizer(bytes.NewReader(b[:min(len(b), metaPrescan)]))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return ""
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			switch string(name) {
			case "body":
				return ""
			case "meta":
			default:
				continue
			}
			var content string
			httpEquiv := false
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				switch string(k) {
				case "charset":
					return string(v)
				case "content":
					content = string(v)
				case "http-equiv":
					httpEquiv = strings.EqualFold(string(v), "content-type")
				}
			}
			if httpEquiv && content != "" {
				if _, params := w.parseMediaParams(content); params["charset"] != "" {
					return params["charset"]
				}
			}
		}
	}
}
