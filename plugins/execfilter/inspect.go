package execfilter

import (
	"context"
	"io"
	"slices"
	"sort"
	"strings"
)

// Tags the stage reports.
const (
	TagExecutable = "executable"            // an attachment is an executable (bytes, type or name)
	TagInArchive  = "executable.in-archive" // an archive entry is one
	TagNested     = "archive.nested"        // an archive inside an archive (not opened)
	TagEncrypted  = "archive.encrypted"     // an encrypted entry or archive (not inspectable)
	TagLimit      = "archive.limit"         // a limit stopped the inspection: treat as a bomb
	TagCorrupt    = "archive.corrupt"       // an archive that does not open
	TagMismatch   = "name-mismatch"         // an executable named as something else
	tagSigPrefix  = "signature:"            // signature:NAME
)

// inspector collects what one message's attachments reveal.
type inspector struct {
	lim      Limits
	sigs     []signature
	exts     map[string]bool
	ctypes   map[string]bool
	current  string // name of the attachment being inspected
	inTNEF   bool   // inspecting the attachments of a winmail.dat
	tags     map[string]bool
	kinds    map[string]bool
	files    []string
	limitHit string
}

func newInspector(cfg *config) *inspector {
	return &inspector{lim: cfg.Limits, sigs: cfg.sigs, exts: cfg.extSet, ctypes: cfg.ctypeSet,
		tags: map[string]bool{}, kinds: map[string]bool{}}
}

func (in *inspector) tag(t string) { in.tags[t] = true }

func (in *inspector) limit(what string) {
	in.tag(TagLimit)
	if in.limitHit == "" {
		in.limitHit = what
	}
}

// attachment inspects one decoded MIME part: its own bytes, then its
// entries when it is an archive.
func (in *inspector) attachment(ctx context.Context, name, ctype string, data []byte) {
	in.current = name
	scan := newFileScan(in.sigs)
	scan.Write(data)
	in.judge(name, ctype, scan, TagExecutable)
	if len(data) > 0 {
		in.inspectArchive(ctx, data)
	}
}

// entry inspects one archive entry, streaming it within the budget.
func (in *inspector) entry(b *budget, e entry) error {
	b.entries++
	if b.entries > in.lim.MaxEntries {
		return &errLimit{"entries"}
	}
	if e.encrypted {
		in.tag(TagEncrypted)
		in.judgeEntry(e, newFileScan(nil)) // the name still counts
		return nil
	}
	rc, err := e.open()
	if err != nil {
		// The name is judged all the same: the archive lists it, and
		// 7-Zip or libarchive may well extract what our readers cannot
		// (PPMd, Deflate64, 7z filters bodgit/sevenzip lacks), so an
		// evil.exe we cannot decompress is still one to whoever opens it.
		in.readError(e, err)
		in.judgeEntry(e, newFileScan(nil))
		return nil
	}
	defer rc.Close()
	scan := newFileScan(in.sigs)
	if err := b.copyFile(scan, rc, e.csize); err != nil {
		if _, ok := err.(*errLimit); ok {
			return err
		}
		if err != io.ErrUnexpectedEOF && !strings.Contains(err.Error(), "checksum") {
			in.readError(e, err)
		}
	}
	in.judgeEntry(e, scan)
	if isArchive(b.ctx, scan.head) {
		in.tag(TagNested)
		if what := nestedZipBomb(scan, in.lim); what != "" {
			in.limit(what)
		}
	}
	return nil
}

// judgeEntry judges an entry's bytes under each name it has: extractors
// differ on which they use, as mail clients do on a part's.
func (in *inspector) judgeEntry(e entry, scan *fileScan) {
	in.judge(e.name, "", scan, TagInArchive)
	for _, n := range e.aliases {
		if n != e.name {
			in.judge(n, "", scan, TagInArchive)
		}
	}
}

// readError tags an entry that could not be read: encrypted or corrupt.
func (in *inspector) readError(e entry, err error) {
	switch {
	case isEncrypted(err):
		in.tag(TagEncrypted)
	case !e.quiet:
		in.tag(TagCorrupt)
	}
}

// judge tags a file by its bytes, content type and name.
func (in *inspector) judge(name, ctype string, scan *fileScan, execTag string) {
	kind := kindOf(scan.head)
	if kind == "" && (in.exts[ext(name)] || in.ctypes[ctype]) {
		kind = kindScript
	}
	if kind != "" {
		in.tag(execTag)
		in.kinds[kind] = true
		if len(in.files) < 10 && name != "" && !slices.Contains(in.files, name) {
			in.files = append(in.files, name)
		}
		if kind != kindScript && nameMismatch(kind, name) {
			in.tag(TagMismatch)
		}
	}
	for n := range scan.matched {
		in.tag(tagSigPrefix + n)
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
