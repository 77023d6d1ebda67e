package bayes

import (
	"strings"
)

// findURLs returns the http(s) and www. links written in plain text, in
// one pass over the text.
func findURLs(s string) []string {
	var out []string
	for off := 0; off < len(s); {
		i := indexURL(s[off:])
		if i < 0 {
			break
		}
		start := off + i
		end := start
		for end < len(s) && !urlStop(s[end]) {
			end++
		}
		out = append(out, s[start:end])
		off = end + 1
	}
	return out
}

// indexURL finds the next "http://", "https://" or "www." in any case.
func indexURL(s string) int {
	for i := 0; i+4 <= len(s); i++ {
		switch s[i] | 0x20 {
		case 'h':
			if hasPrefixFold(s[i:], "http://") || hasPrefixFold(s[i:], "https://") {
				return i
			}
		case 'w':
			if hasPrefixFold(s[i:], "www.") {
				return i
			}
		}
	}
	return -1
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func urlStop(c byte) bool {
	return c <= ' ' || c == '"' || c == '\'' || c == '<' || c == '>' || c == ')' || c >= 0x80
}

// url emits "url:" tokens for the host of link and each parent domain
// (a.b.example.com gives a.b.example.com, b.example.com, example.com), so
// a new subdomain of a known spam domain is still recognised.
func (t *Tokenizer) url(set *tokenSet, link string) {
	host := urlHost(link)
	if host == "" {
		return
	}
	set.add("url:" + host)
	if isNumericHost(host) {
		set.add("url:*ip*")
		return
	}
	for {
		dot := strings.IndexByte(host, '.')
		if dot < 0 || strings.IndexByte(host[dot+1:], '.') < 0 {
			return
		}
		host = host[dot+1:]
		set.add("url:" + host)
	}
}

func urlHost(link string) string {
	l := strings.ToLower(strings.TrimSpace(link))
	switch {
	case strings.HasPrefix(l, "http://"):
		l = l[7:]
	case strings.HasPrefix(l, "https://"):
		l = l[8:]
	case strings.HasPrefix(l, "www."):
	case strings.HasPrefix(l, "mailto:"):
		if at := strings.LastIndexByte(l, '@'); at >= 0 {
			l = l[at+1:]
		} else {
			return ""
		}
	default:
		return ""
	}
	if i := strings.IndexAny(l, "/?#\\"); i >= 0 {
		l = l[:i]
	}
	if at := strings.LastIndexByte(l, '@'); at >= 0 {
		l = l[at+1:] // user:pass@host obfuscation
	}
	if i := strings.IndexByte(l, ':'); i >= 0 {
		l = l[:i]
	}
	l = strings.Trim(l, ".")
	if len(l) > 100 || !strings.Contains(l, ".") {
		return ""
	}
	return l
}

func isNumericHost(h string) bool {
	for i := 0; i < len(h); i++ {
		if (h[i] < '0' || h[i] > '9') && h[i] != '.' {
			return false
		}
	}
	return true
}
