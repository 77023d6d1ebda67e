package mime

import (
	"bytes"
	"strings"
)

// maxExtraReadings bounds the multiparts walked again under a second
// boundary (see multiparts) in one message. Each reading costs a walk of
// the multipart's body; nested multiparts that each give two boundaries
// would otherwise double the walk at every level.
const maxExtraReadings = 8

// boundaries returns the distinct boundary values Content-Type field ct
// gives, in the order given, the one params holds (the walker's, the last
// or an RFC 2231 one) among them.
func (w *walker) boundaries(ct string, params map[string]string) []string {
	var vals []string
	seen := map[string]bool{"": true}
	add := func(v string) {
		if !seen[v] {
			seen[v] = true
			vals = append(vals, v)
		}
	}
	// Most fields name boundary once: they are not split again.
	if _, rest, _ := strings.Cut(ct, ";"); strings.Count(strings.ToLower(rest), "boundary") > 1 {
		var p paramScanner
		for _, r := range p.split(rest) {
			if r.name == "boundary" {
				add(w.plainParam(r.val))
			}
		}
	}
	add(params["boundary"])
	return vals
}

// multiparts walks a multipart body whose Content-Type gives boundaries
// vals. RFC 2045 5.1 allows a parameter once, so a boundary given twice
// (boundary="A"; boundary="B") has no meaning a standard decides, and
// readers differ: Python's email and Thunderbird take the first, the
// parameter map the last. A sender delimits the parts with the one the
// walker ignores and the whole multipart, its executable included, is one
// text part to the walker and an attachment to the recipient. So the body
// is walked under every value whose delimiter line it holds, in the order
// given (at worst a part is seen twice), and under the first when it holds
// none; the field is FindParamAmbiguous. Past maxExtraReadings in one
// message the other readings are not walked, with FindPartsLimit: parts
// the walker did not reach must stop a stage that judges them all.
func (w *walker) multiparts(vals []string, body []byte, path string, depth int) bool {
	if len(vals) <= 1 {
		b := ""
		if len(vals) == 1 {
			b = vals[0]
		}
		return w.multipart(body, b, path, depth)
	}
	w.find(FindParamAmbiguous)
	var present []string
	for i, ok := range delimitersIn(body, vals) {
		if ok {
			present = append(present, vals[i])
		}
	}
	if len(present) == 0 {
		return w.multipart(body, vals[0], path, depth)
	}
	walked := false
	for i, b := range present {
		if i > 0 {
			if w.readings >= maxExtraReadings {
				w.find(FindPartsLimit)
				break
			}
			w.readings++
		}
		walked = w.multipart(body, b, path, depth) || walked
	}
	return walked
}

// delimitersIn reports which of vals have a delimiter or close delimiter
// line in body, "--" boundary ["--"] followed by white space alone (RFC
// 2046 5.1.1, as splitMultipart reads them), in one pass over the lines
// that start with "--": a field may give thousands of values, and looking
// for each in turn would cost their number times the body.
func delimitersIn(body []byte, vals []string) []bool {
	idx := make(map[string]int, len(vals))
	for i := len(vals) - 1; i >= 0; i-- {
		idx[strings.TrimRight(vals[i], " \t")] = i
	}
	found := make([]bool, len(vals))
	for pos := 0; pos < len(body); {
		i := bytes.Index(body[pos:], []byte("--"))
		if i < 0 {
			break
		}
		i += pos
		if i > 0 && body[i-1] != '\n' {
			pos = i + 1
			continue
		}
		line, _ := cutLine(body[i+2:])
		pos = i + 2 + len(line)
		tail := bytes.TrimRight(line, " \t\r\n")
		if k, ok := idx[string(tail)]; ok { // the conversion allocates nothing
			found[k] = true
		}
		if c, ok := bytes.CutSuffix(tail, []byte("--")); ok {
			if k, ok := idx[string(c)]; ok {
				found[k] = true
			}
		}
	}
	return found
}
