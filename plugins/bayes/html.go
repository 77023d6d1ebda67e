package bayes

import (
	"html"
	"strings"
)

// stripHTML turns HTML into text for the word tokenizer and collects the
// links (href, src, action) and the tag names seen. It is a forgiving
// scanner, not a parser: spam HTML is rarely well formed, and a scanner
// never fails on it. Script and style contents and comments are dropped.
func stripHTML(s string) (text string, links, tags []string) {
	var b strings.Builder
	b.Grow(len(s) / 2)
	for len(s) > 0 {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			b.WriteString(html.UnescapeString(s))
			break
		}
		b.WriteString(html.UnescapeString(s[:i]))
		s = s[i:]
		if strings.HasPrefix(s, "<!--") {
			end := strings.Index(s, "-->")
			if end < 0 {
				break
			}
			s = s[end+3:]
			continue
		}
		end := strings.IndexByte(s, '>')
		if end < 0 {
			break
		}
		tag := s[1:end]
		s = s[end+1:]
		name, attrs := splitTag(tag)
		if name == "" {
			b.WriteByte(' ')
			continue
		}
		tags = append(tags, name)
		links = appendLinks(links, attrs)
		if name == "script" || name == "style" {
			s = skipUntilClose(s, name)
		}
		if blockTag(name) {
			b.WriteByte('\n')
		} else {
			b.WriteByte(' ')
		}
	}
	return b.String(), links, tags
}

func splitTag(tag string) (name, attrs string) {
	tag = strings.TrimLeft(tag, "/! \t\r\n")
	i := 0
	for i < len(tag) && isTagNameByte(tag[i]) {
		i++
	}
	return strings.ToLower(tag[:i]), tag[i:]
}

func isTagNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func skipUntilClose(s, name string) string {
	low := strings.ToLower(s)
	if i := strings.Index(low, "</"+name); i >= 0 {
		return s[i:]
	}
	return ""
}

func blockTag(name string) bool {
	switch name {
	case "p", "br", "div", "tr", "td", "li", "table", "h1", "h2", "h3", "h4", "title", "body":
		return true
	}
	return false
}

// appendLinks adds the values of href, src and action attributes.
func appendLinks(links []string, attrs string) []string {
	low := strings.ToLower(attrs)
	for _, key := range [...]string{"href", "src", "action"} {
		off := 0
		for {
			i := strings.Index(low[off:], key)
			if i < 0 {
				break
			}
			j := off + i + len(key)
			off = j
			j = skipSpace(low, j)
			if j >= len(low) || low[j] != '=' {
				continue
			}
			j = skipSpace(low, j+1)
			links = append(links, attrValue(attrs, j))
		}
	}
	return links
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

func attrValue(s string, i int) string {
	if i >= len(s) {
		return ""
	}
	if q := s[i]; q == '"' || q == '\'' {
		end := strings.IndexByte(s[i+1:], q)
		if end < 0 {
			return html.UnescapeString(s[i+1:])
		}
		return html.UnescapeString(s[i+1 : i+1+end])
	}
	end := strings.IndexAny(s[i:], " \t\r\n>")
	if end < 0 {
		return s[i:]
	}
	return html.UnescapeString(s[i : i+end])
}
