package dkimsign

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strings"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/portcullis-mta/portcullis/core/queue"
)

// maxHeader bounds the header block read to find From and signed:
// go-msgauth holds the header in memory while it signs.
const maxHeader = 1 << 20

// ErrHeaderTooLarge is returned, beside the message as it is, for a
// message whose header is over maxHeader bytes and may be ours to sign
// (its From domain has keys, or no From was found in what was read): it
// goes out unsigned, as mail that was accepted must not be held back by
// our own signer, and the caller logs why.
var ErrHeaderTooLarge = errors.New("dkimsign: header over 1 MiB: sent unsigned")

// Sign returns msg with DKIM-Signature fields on top when env and the
// From domain call for signing (see the package doc), else msg as it is.
// It returns a reader and ErrHeaderTooLarge both for a message it cannot
// sign but that may go out as it is; any other error means the message
// cannot be read.
func (s *Signer) Sign(env *queue.Envelope, msg io.Reader) (io.Reader, error) {
	if len(s.keys) == 0 || env == nil || !(env.Client.Trusted || env.Client.Authenticated || env.IsDSN) {
		return msg, nil
	}
	start := int64(-1)
	if sk, ok := msg.(io.Seeker); ok {
		if p, err := sk.Seek(0, io.SeekCurrent); err == nil {
			start = p
		}
	}
	br := bufio.NewReaderSize(msg, 64<<10)
	head, whole, err := readHeader(br)
	if err != nil {
		return nil, err
	}
	rest := io.MultiReader(bytes.NewReader(head), br)
	keys := s.keysFor(fromDomain(head))
	if !whole {
		if len(keys) == 0 && fromDomain(head) != "" {
			return rest, nil // not ours to sign whatever its size
		}
		return rest, ErrHeaderTooLarge
	}
	if len(keys) == 0 {
		return rest, nil
	}
	// A message may be a header alone, with no empty line (RFC 5322 3.5).
	// It is signed with an empty body, whose canonical form is empty
	// (relaxed, RFC 6376 3.4.4), and sent with the empty line added, so
	// that what goes out is what was signed, in the form a verifier reads.
	var tail string
	if !blankLineEnds(head) {
		tail = "\r\n"
		if !bytes.HasSuffix(head, []byte("\n")) {
			tail = "\r\n\r\n"
		}
	}
	signers, ws, err := newSigners(keys)
	if err != nil {
		return nil, err
	}
	closed := 0 // each signer is closed once, here or below
	defer func() {
		for _, sg := range signers[closed:] {
			_ = sg.Close()
		}
	}()
	w := io.MultiWriter(ws...)
	again, err := s.replay(msg, rest, w, start)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(w, tail); err != nil {
		return nil, fmt.Errorf("dkimsign: %w", err)
	}
	var sigs strings.Builder
	for _, sg := range signers {
		closed++
		if err := sg.Close(); err != nil {
			return nil, fmt.Errorf("dkimsign: %w", err)
		}
		sigs.WriteString(sg.Signature())
	}
	return io.MultiReader(strings.NewReader(sigs.String()), again, strings.NewReader(tail)), nil
}

// newSigners starts one go-msgauth signer per key.
func newSigners(keys []*Key) ([]*dkim.Signer, []io.Writer, error) {
	signers := make([]*dkim.Signer, 0, len(keys))
	ws := make([]io.Writer, 0, len(keys))
	for _, k := range keys {
		sg, err := dkim.NewSigner(k.options())
		if err != nil {
			for _, done := range signers {
				_ = done.Close()
			}
			return nil, nil, fmt.Errorf("dkimsign: %s/%s: %w", k.Domain, k.Selector, err)
		}
		signers, ws = append(signers, sg), append(ws, sg)
	}
	return signers, ws, nil
}

// replay copies the message (rest) into w and returns a reader over it
// again: msg itself rewound to start when it can seek (start >= 0), else
// a spilled copy.
func (s *Signer) replay(msg, rest io.Reader, w io.Writer, start int64) (io.Reader, error) {
	if start >= 0 {
		if _, err := io.Copy(w, rest); err != nil {
			return nil, err
		}
		if _, err := msg.(io.Seeker).Seek(start, io.SeekStart); err != nil {
			return nil, err
		}
		return msg, nil
	}
	sp := &spill{limit: MemLimit, dir: s.tempDir}
	if _, err := io.Copy(io.MultiWriter(w, sp), rest); err != nil {
		sp.discard()
		return nil, err
	}
	return sp.reader()
}

// readHeader returns the header block, through the blank line that ends
// it (or the whole message when it has no body); whole is false when it
// is over maxHeader bytes, and head holds the first of them.
func readHeader(br *bufio.Reader) (head []byte, whole bool, err error) {
	for {
		line, err := br.ReadSlice('\n')
		head = append(head, line...)
		if len(head) > maxHeader {
			return head, false, nil
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			return head, true, nil
		}
		if err != nil {
			return nil, false, err
		}
		if len(line) <= 2 && strings.TrimRight(string(line), "\r\n") == "" {
			return head, true, nil
		}
	}
}

// blankLineEnds reports whether head, as readHeader returns it, ends with
// the empty line that ends a header, rather than at the end of the message.
func blankLineEnds(head []byte) bool {
	h := append([]byte("\n"), head...)
	return bytes.HasSuffix(h, []byte("\n\n")) || bytes.HasSuffix(h, []byte("\n\r\n"))
}

// anyCharset reads encoded display names in any charset: only the
// address is wanted.
var anyCharset = mail.AddressParser{WordDecoder: &mime.WordDecoder{
	CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil },
}}

// fromDomain is the domain of the single From address, or "" when there
// is none, or several from different domains (nothing to align with).
func fromDomain(head []byte) string {
	// A copy: appending to a subslice of head would write into it.
	trimmed := bytes.TrimRight(head, "\r\n")
	buf := make([]byte, 0, len(trimmed)+4)
	buf = append(append(buf, trimmed...), "\r\n\r\n"...)
	m, err := mail.ReadMessage(bytes.NewReader(buf))
	if err != nil || len(m.Header["From"]) != 1 {
		return ""
	}
	list, err := anyCharset.ParseList(m.Header.Get("From"))
	if err != nil || len(list) == 0 {
		return ""
	}
	var domain string
	for _, a := range list {
		d := strings.ToLower(a.Address[strings.LastIndexByte(a.Address, '@')+1:])
		if domain != "" && d != domain {
			return ""
		}
		domain = d
	}
	return domain
}
