package msgauth

import (
	"strings"

	"github.com/emersion/go-msgauth/authres"

	"github.com/portcullis-mta/portcullis/sdk"
)

const arField = "Authentication-Results"

// maxKeptAuthres bounds the inbound Authentication-Results fields added
// back when forged ones are removed (see headerEdits).
const maxKeptAuthres = 256 << 10

// report is everything that goes into the Authentication-Results field.
type report struct {
	spf     spfResult
	sender  string // MAIL FROM, "" for <>
	helo    string
	dkim    []sigResult
	dmarc   outcome
	from    string
	fromErr string
}

// format renders the field value (RFC 8601 2.2) with go-msgauth's authres.
// Every value but the results comes from the sender (MAIL FROM, HELO,
// From, d= and i=, and error texts naming them); each goes through
// pvalue or reasonText first.
func (r *report) format(authservID string) string {
	var res []authres.Result
	s := &authres.SPFResult{Value: authres.ResultValue(r.spf.result), Reason: reasonText(r.spf.reason)}
	if r.sender != "" {
		s.From = mailbox(r.sender)
	} else {
		s.Helo = pvalue(aLabelOrSelf(r.helo))
	}
	res = append(res, s)
	if len(r.dkim) == 0 {
		res = append(res, &authres.DKIMResult{Value: authres.ResultNone})
	}
	for _, d := range r.dkim {
		res = append(res, &authres.DKIMResult{Value: authres.ResultValue(d.result), Reason: reasonText(d.reason),
			Domain: pvalue(d.domain), Identifier: mailbox(d.ident)})
	}
	m := &authres.DMARCResult{Value: authres.ResultValue(r.dmarc.result), Reason: reasonText(r.dmarc.reason), From: pvalue(r.from)}
	if r.fromErr != "" {
		m.Reason = reasonText(r.fromErr)
	}
	res = append(res, m)
	// authres.Format leaves a space before ";" after a result without
	// properties ("dkim=none ;"): format one at a time and join.
	parts := []string{authservID}
	for _, r := range res {
		one := authres.Format(authservID, []authres.Result{r})
		parts = append(parts, strings.TrimSpace(strings.TrimPrefix(one, authservID+";")))
	}
	return strings.Join(parts, "; ")
}

// pvalue is s when it can stand as an RFC 8601 2.2 pvalue as it is, else
// "" (the property is then left out). authres quotes some values but
// escapes only '"' in them, so a '\' could end the quoted-string early
// and open a comment that hides the results after it; and readers that
// split the field at every ';' (authres.Parse among them) would take one
// in a quoted local-part for the start of a result ("dmarc=pass").
//
// The field is ASCII: the gateway writes an added value that is not as
// RFC 2047 encoded words, the whole of it, and downstream readers would
// find neither our authserv-id nor a result in the base64. Domains are put
// in A-labels before they come here (aLabelOrSelf).
func pvalue(s string) string {
	for _, c := range s {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune(`"\;()<>`, c) {
			return ""
		}
	}
	return s
}

// mailbox is a pvalue for an address, its domain in A-labels: the whole
// address, or "@domain" when its local-part cannot stand there (an
// SMTPUTF8 one, or one with a quoted ';'; RFC 8601 2.2 allows the
// local-part to be left out).
func mailbox(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return pvalue(addr)
	}
	domain := aLabelOrSelf(addr[i+1:])
	if v := pvalue(addr[:i+1] + domain); v != "" {
		return v
	}
	if d := pvalue(domain); d != "" {
		return "@" + d
	}
	return ""
}

// aLabelOrSelf is domain in A-labels, or domain as it is when it does not
// convert (pvalue then leaves it out).
func aLabelOrSelf(domain string) string {
	if a, err := aLabel(domain); err == nil {
		return a
	}
	return domain
}

// reasonText makes a reason safe to quote: no quote, backslash, ';' or
// control characters (see pvalue), and ASCII: what is not (a name from a
// sender's DNS record in a lookup error) becomes '?'.
func reasonText(s string) string {
	return strings.Map(func(c rune) rune {
		switch {
		case c < ' ' || c == 0x7f:
			return ' '
		case c > 0x7f:
			return '?'
		case c == '"' || c == '\\':
			return '\''
		case c == ';':
			return ','
		}
		return c
	}, s)
}

// servID is the authserv-id of a field value: its first token once
// comments are gone (RFC 8601 2.2 allows CFWS before it; a forger can hide
// our id behind a comment from a naive reader), unquoted when it is a
// quoted-string.
func servID(v string) string {
	v = strings.TrimSpace(stripComments(v))
	if i := strings.IndexAny(v, " \t;"); i >= 0 {
		v = v[:i]
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = strings.ReplaceAll(v[1:len(v)-1], "\\", "")
	}
	return v
}

// stripComments replaces RFC 5322 3.2.2 comments, nested and with quoted
// pairs, by a space; quoted strings are left alone.
func stripComments(v string) string {
	var b strings.Builder
	depth, quoted := 0, false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\' && (depth > 0 || quoted) && i+1 < len(v):
			if depth == 0 {
				b.WriteByte(c)
				b.WriteByte(v[i+1])
			}
			i++
		case quoted:
			b.WriteByte(c)
			quoted = c != '"'
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			if depth--; depth == 0 {
				b.WriteByte(' ')
			}
		case depth > 0:
		default:
			b.WriteByte(c)
			quoted = c == '"'
		}
	}
	return b.String()
}

// headerEdits adds our field and removes forged ones: a field claiming our
// authserv-id that came in from outside (RFC 8601 5). The host can only
// remove every field of a name, wherever it is in the header, so when one
// is forged all go and the others are added back, below ours, in their
// order, up to maxKeptAuthres bytes: h is the whole header (readOwnHeader),
// and megabytes of them added back would not fit in the stage's reply to
// the host. Those past it stay removed, as RFC 8601 5 allows for fields
// from outside. forged counts the forged ones.
func headerEdits(h []sdk.HeaderField, authservID, value string) (edits []sdk.HeaderEdit, forged int) {
	var keep []string
	size := 0
	for _, f := range h {
		if !strings.EqualFold(f.Name, arField) {
			continue
		}
		if strings.EqualFold(servID(f.Value), authservID) {
			forged++
		} else if size += len(f.Value); size <= maxKeptAuthres {
			keep = append(keep, f.Value)
		}
	}
	if forged > 0 {
		edits = append(edits, sdk.HeaderEdit{Op: sdk.HeaderRemove, Name: arField})
	}
	edits = append(edits, sdk.HeaderEdit{Op: sdk.HeaderAdd, Name: arField, Value: value})
	if forged > 0 {
		for _, v := range keep {
			edits = append(edits, sdk.HeaderEdit{Op: sdk.HeaderAdd, Name: arField, Value: v})
		}
	}
	return edits, forged
}
