package msgauth

import (
	"strings"

	"github.com/emersion/go-msgauth/authres"

	"github.com/portcullis-mta/portcullis/sdk"
)

const arField = "Authentication-Results"

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
func (r *report) format(authservID string) string {
	var res []authres.Result
	s := &authres.SPFResult{Value: authres.ResultValue(r.spf.result), Reason: r.spf.reason}
	if r.sender != "" {
		s.From = r.sender
	} else {
		s.Helo = r.helo
	}
	res = append(res, s)
	if len(r.dkim) == 0 {
		res = append(res, &authres.DKIMResult{Value: authres.ResultNone})
	}
	for _, d := range r.dkim {
		res = append(res, &authres.DKIMResult{Value: authres.ResultValue(d.result), Reason: d.reason, Domain: d.domain, Identifier: d.ident})
	}
	m := &authres.DMARCResult{Value: authres.ResultValue(r.dmarc.result), Reason: r.dmarc.reason, From: r.from}
	if r.fromErr != "" {
		m.Reason = r.fromErr
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
// remove every field of a name, so when one is forged all go and the
// others are added back, below ours, in their order. forged counts them.
func headerEdits(h []sdk.HeaderField, authservID, value string) (edits []sdk.HeaderEdit, forged int) {
	var keep []string
	for _, f := range h {
		if !strings.EqualFold(f.Name, arField) {
			continue
		}
		if strings.EqualFold(servID(f.Value), authservID) {
			forged++
		} else {
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
