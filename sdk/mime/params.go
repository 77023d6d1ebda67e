package mime

import (
	"strings"
)

// mediaParams splits "type/sub; a=b; c*0*=..." leniently and returns the
// lower-cased value, the decoded parameters (lower-cased names), and the
// file names (filename=, name=) a plain RFC 2045/2231 reader gives that
// params does not.
//
// The walker reads a quoted value holding raw ISO-2022-JP or Shift_JIS
// taking their bytes as text (see paramScanner.quoted), but a mail client
// that reads quoted strings the standard way ends the value at the first
// '"' and sees what follows as parameters. A double-byte run that is not
// left until a later parameter's value swallows the parameters between:
//
//	name="ESC $ B"; filename="evil.exe"; x="ESC ( B"
//
// is one name to the walker and a filename=evil.exe to a plain reader,
// which saves the file under that name. So whenever a value was read
// otherwise, the field is read again the plain way and the two readings
// are compared by where their parameters start:
//
//   - The walker's reading is trusted when every parameter the plain
//     reading finds under an RFC 2045 token name also starts a parameter
//     in the walker's reading: what it read on past the plain reader's
//     quote swallowed no parameter a client acts on. A real Japanese name
//     whose JIS pair holds 0x22 (ア is 0x25 0x22) leaves the plain reader
//     the rest of the name as junk, a parameter only where a '=' (書 is
//     0x3D 0x71) follows token bytes alone (JIS bytes include tspecials:
//     '<', '@', '"'). Where it is one, the field is taken for ambiguous:
//     a false alarm costs a finding and an extra name, a miss an
//     executable saved under a name no check saw.
//     Two conditions hold for the real name and the evasion alike, so
//     they decide nothing: a closing ISO-2022-JP reading has returned to
//     a single-byte set (ESC ( B, ESC ( J) before its quote, as a quote
//     in a double-byte run is text; and the plain value is cut inside a
//     double-byte run, as one that is well-formed ISO-2022-JP ends where
//     the walker's does.
//   - Otherwise the field is ambiguous (FindParamAmbiguous): the
//     parameters only the plain reading has are added to params, so the
//     walker hides none (a boundary or a filename), and params keeps the
//     walker's value of those both readings have.
//
// Either way, where a parameter's value ends elsewhere in the two readings
// (a Shift_JIS name ending in 0x5C, read plainly, runs on over the next
// parameters), the plain reading's filename= and name= are returned when
// they differ from params': clients differ on which reading they use, and
// a stage judging names must judge both.
//
// The plain reading is done only for a field the walker read otherwise,
// and is linear like the walker's: the comparison walks the two lists of
// parameters, in the order of their offsets, once.
func (w *walker) mediaParams(s string) (value string, params map[string]string, plainNames []string) {
	value, rest, _ := strings.Cut(s, ";")
	value = strings.ToLower(strings.TrimSpace(value))
	var p paramScanner
	read := p.split(rest)
	params = w.decodeParams(read)
	// A name given twice (filename="evil.exe"; filename="a.txt"): the map
	// keeps the last, a client may take the first; a stage judging names
	// must judge every one.
	// A set keeps this linear: a header may give the name thousands of
	// times.
	seen := map[string]bool{}
	for _, r := range read {
		if r.name != "filename" && r.name != "name" {
			continue
		}
		if v := w.plainParam(r.val); v != "" && v != params[r.name] && !seen[v] {
			seen[v] = true
			plainNames = append(plainNames, v)
		}
	}
	if !p.reread {
		return value, params, plainNames // every value read the standard way
	}
	plainScanner := paramScanner{plain: true}
	plainRead := plainScanner.split(rest)
	hidden, moved := compareReadings(read, plainRead)
	if len(hidden) == 0 && !moved {
		return value, params, nil
	}
	addName := func(v, walkers string) {
		if v != "" && v != walkers && !seen[v] {
			seen[v] = true
			plainNames = append(plainNames, v)
		}
	}
	// Each hidden name counts, not only the one that wins in the map:
	// clients differ on which of two filename= they take.
	for _, h := range hidden {
		if h.name == "filename" || h.name == "name" {
			addName(w.plainParam(h.val), params[h.name])
		}
	}
	plain := w.decodeParams(plainRead)
	for _, name := range [...]string{"filename", "name"} {
		addName(plain[name], params[name])
	}
	if len(hidden) > 0 {
		w.find(FindParamAmbiguous)
		for name, v := range plain {
			if _, ok := params[name]; !ok {
				params[name] = v
			}
		}
	}
	return value, params, plainNames
}

// compareReadings returns the parameters with a token name that the plain
// reading of a field has where the walker's reading starts none (hidden),
// and reports whether a parameter both readings start ends elsewhere in
// each (moved). Both lists are in the order of their offsets.
func compareReadings(read, plain []rawParam) (hidden []rawParam, moved bool) {
	i := 0
	for _, pp := range plain {
		for i < len(read) && read[i].at < pp.at {
			i++
		}
		switch {
		case i < len(read) && read[i].at == pp.at:
			moved = moved || read[i].end != pp.end
		case isToken(pp.name):
			hidden = append(hidden, pp)
		}
	}
	return hidden, moved
}

// isToken reports whether s is an RFC 2045 5.1 token: a parameter name a
// mail client takes as one, unlike the junk a plain reading makes of the
// rest of a JIS run (bytes such as '<', '@' or '"' are tspecials).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}
