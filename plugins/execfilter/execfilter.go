// Package execfilter is the EXEC content stage: it finds executables in a
// message's attachments by their bytes, not their names, and looks one
// level deep inside archives.
//
// Recognised by content: Windows PE (MZ header with a PE signature) and bare
// DOS MZ, ELF, Mach-O (thin and fat), Java classes, Windows Installer
// packages (OLE compound files with the MSI, MSP or MST class id; Word and
// Excel files are not executables), Windows shell links (LNK) and "#!"
// scripts. Scripts are also recognised by content type and file extension
// lists (config). An executable whose name claims another type (invoice.pdf
// that is a PE) is also tagged name-mismatch. Names are judged as Windows
// saves them (trailing dots and spaces dropped: "run.js." is run.js), and a
// part whose Content-Type name= differs from its Content-Disposition
// filename= is judged under both, since clients differ on which they use.
//
// Outlook's winmail.dat (TNEF, MS-OXTNEF) is opened like a MIME
// multipart: the files in it are attachments to whoever reads the mail, so
// they are inspected as attachments, archives among them opened one level.
// Each file is judged under its attAttachTitle and the names its MAPI
// properties give (long, 8.3 and display names), as clients save it under
// the long one.
//
// Archives are recognised by their bytes: ZIP always (also with junk in
// front, as unzip tools accept it; names in Shift_JIS decoded; besides the
// entries its central directory lists, those only its local headers show,
// as 7-Zip and WinRAR extract them from concatenated ZIPs and from ZIPs
// whose directory is damaged or missing, which are still archive.corrupt),
// and every format github.com/mholt/archives identifies (7z, RAR, tar,
// gzip, bzip2, xz, zstd, compressed tars; a compressed single file counts
// as an archive of one entry). Every name an entry has is judged (a ZIP's
// directory and local names and Info-ZIP Unicode Path, a tar link's own
// name, a gzip header's stored name), also for an entry whose bytes we
// cannot decompress, which is otherwise archive.corrupt. Only one level is opened: an archive inside
// an archive is tagged archive.nested and never opened; for a nested ZIP
// its directory alone is read, and entries declaring impossible sizes or
// ratios (a layer of 42.zip) make it archive.limit. Entries are streamed
// through a fixed buffer, never held whole, and inspection stops at the limits
// (entries, bytes per entry, total bytes, compression ratio, time, and
// overlapping ZIP entries); a stopped inspection is tagged archive.limit, so
// a zip bomb is a tag, never an outage. Declared sizes are never trusted.
// A 7z header is read before the 7z reader reads it: one whose counts its
// bytes cannot hold is archive.corrupt, one past four times max_entries
// is archive.limit, as the reader would allocate for them before reading
// on; an LZMA dictionary or RAR window past max_total_bytes (and 64 MiB)
// is archive.limit, as the decoder allocates all of it; an archive that
// makes its reader panic is archive.corrupt.
//
// The original server's binary signatures are hex patterns, anywhere in a
// file or at an offset, matched against every decoded attachment and every
// archive entry; a match is tagged signature:NAME.
//
// # Config
//
//	extensions: [exe, scr, js, ...]    # names counted as executables (default: defaultExtensions)
//	content_types: [application/x-msdownload, ...]   # likewise (default: defaultContentTypes)
//	signatures:
//	  - {name: old-dropper, hex: "4d5a 9000 0300", offset: 0}   # offset optional: anywhere
//	limits: {max_entries: 1000, max_entry_bytes: 26214400, max_total_bytes: 67108864,
//	         max_ratio: 100, timeout: 5s}
//
// # Result
//
// Tags: executable, executable.in-archive, name-mismatch, signature:NAME,
// archive.nested, archive.encrypted, archive.limit, archive.corrupt.
// Verdict fail when an executable, a signature or a limit was hit; neutral
// when only archive.nested, archive.encrypted or archive.corrupt; else pass.
// Attrs: kinds (pe, elf, macho, java, msi, lnk, dos, script), files (up to
// ten names) and limit (which limit stopped the inspection).
package execfilter

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/mime"
)

// mimeLimits keep whole attachments of the largest messages a gateway
// takes (max_message_bytes 25 MiB by default): a cut ZIP loses its central
// directory, so a cut part is tagged archive.limit.
var mimeLimits = mime.Limits{MaxParts: 500, MaxDepth: 20, MaxPartBytes: 48 << 20, MaxTotalBytes: 96 << 20}

// Stage is the EXEC stage.
type Stage struct {
	cfg *config
}

var (
	_ sdk.Stage         = (*Stage)(nil)
	_ sdk.ConfigChecker = (*Stage)(nil)
)

// New returns an EXEC stage.
func New() sdk.Stage { return &Stage{} }

// Info implements sdk.Stage.
func (s *Stage) Info() sdk.Info {
	return sdk.Info{Name: "execfilter", Version: "1.0.0", Phases: []sdk.Phase{sdk.PhaseData}}
}

// Configure implements sdk.Stage.
func (s *Stage) Configure(_ context.Context, _ sdk.Env, raw map[string]any) error {
	cfg, err := parseConfig(raw)
	if err != nil {
		return err
	}
	s.cfg = cfg
	return nil
}

// CheckConfig implements sdk.ConfigChecker; the config names no file or
// service, so it is Configure without the keeping.
func (s *Stage) CheckConfig(_ context.Context, _ sdk.Env, raw map[string]any) error {
	_, err := parseConfig(raw)
	return err
}

// Check implements sdk.Stage.
func (s *Stage) Check(ctx context.Context, req *sdk.Request) (*sdk.Result, error) {
	if s.cfg == nil {
		return nil, fmt.Errorf("execfilter: not configured")
	}
	if req.Message == nil {
		return &sdk.Result{Verdict: sdk.VerdictNone}, nil
	}
	m, err := mime.ParseMessage(ctx, req.Message, mimeLimits)
	if err != nil {
		return nil, fmt.Errorf("execfilter: read message: %w", err)
	}
	return s.inspect(ctx, m), nil
}

// inspect runs the inspector over every part that carries a file.
func (s *Stage) inspect(ctx context.Context, m *mime.Message) *sdk.Result {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Limits.Timeout)
	defer cancel()
	in := newInspector(s.cfg)
	for _, f := range m.Findings {
		// Parts the walker did not reach were not inspected either.
		switch f {
		case mime.FindPartsLimit, mime.FindDepthLimit, mime.FindTotalLimit:
			in.limit(f)
		}
	}
	for _, p := range m.Parts {
		names := p.Names()
		if p.Body == nil && !in.ctypes[p.ContentType] && !slices.ContainsFunc(names, func(n string) bool { return in.exts[ext(n)] }) {
			continue
		}
		if p.Truncated {
			in.limit("attachment bytes") // the rest of it was not inspected
		}
		in.attachment(ctx, p.Filename, p.ContentType, p.Body)
		for _, n := range names {
			if n == p.Filename {
				continue
			}
			// Clients differ on which name they save a file under
			// (Content-Disposition's or Content-Type's, or the one a
			// plain reading of the quoted values gives where raw
			// ISO-2022-JP makes two readings): judge them all.
			head := newFileScan(nil)
			head.Write(p.Body[:min(len(p.Body), headSize)])
			in.judge(n, p.ContentType, head, TagExecutable)
		}
	}
	return in.result()
}

func (in *inspector) result() *sdk.Result {
	res := &sdk.Result{Verdict: sdk.VerdictPass, Attrs: map[string]string{}}
	res.Tags = sortedKeys(in.tags)
	res.Score = float64(len(res.Tags))
	for _, t := range res.Tags {
		switch {
		case t == TagExecutable || t == TagInArchive || t == TagMismatch || t == TagLimit || strings.HasPrefix(t, tagSigPrefix):
			res.Verdict = sdk.VerdictFail
		case res.Verdict == sdk.VerdictPass:
			res.Verdict = sdk.VerdictNeutral
		}
	}
	if len(in.kinds) > 0 {
		res.Attrs["kinds"] = strings.Join(sortedKeys(in.kinds), ",")
	}
	if len(in.files) > 0 {
		res.Attrs["files"] = strings.Join(in.files, ",")
	}
	if in.limitHit != "" {
		res.Attrs["limit"] = in.limitHit
	}
	if len(res.Tags) > 0 {
		res.Reason = strings.Join(res.Tags, " ")
		if f := res.Attrs["files"]; f != "" {
			res.Reason += ": " + f
		}
	}
	return res
}
