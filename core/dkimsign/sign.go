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

// maxHeader bounds the header block read to find From.
const maxHeader = 1 << 20

// Sign returns msg with DKIM-Signature fields on top when env and the
// From domain call for signing (see the package doc), else msg as it is.
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
	head, err := readHeader(br)
	if err != nil {
		return nil, err
	}
	rest := io.MultiReader(bytes.NewReader(head), br)
	keys := s.keysFor(fromDomain(head))
	if len(keys) == 0 || !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		return rest, nil
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
	again, err := s.replay(msg, rest, io.MultiWriter(ws...), start)
	if err != nil {
		return nil, err
	}
	var sigs strings.Builder
	for _, sg := range signers {
		closed++
		if err := sg.Close(); err != nil {
			return nil, fmt.Errorf("dkimsign: %w", err)
		}
		sigs.WriteString(sg.Signature())
	}
	return io.MultiReader(strings.NewReader(sigs.String()), again), nil
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
// it (or the whole message when it has no body).
func readHeader(br *bufio.Reader) ([]byte, error) {
	var head []byte
	for {
		line, err := br.ReadSlice('\n')
		head = append(head, line...)
		if len(head) > maxHeader {
			return nil, errors.New("dkimsign: header too large")
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			return head, nil
		}
		if err != nil {
			return nil, err
		}
		if len(line) <= 2 && strings.TrimRight(string(line), "\r\n") == "" {
			return head, nil
		}
	}
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
