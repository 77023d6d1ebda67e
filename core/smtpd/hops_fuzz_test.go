package smtpd

import (
	"bytes"
	"regexp"
	"testing"
)

var refFieldName = regexp.MustCompile(`(?is)^(received|date|message-id)[ \t]*:(.*)$`)

// refHeaderScan is what hopCounter keeps, written the obvious way: the
// header's complete lines up to the empty one, each seen by its first
// len(lineHead) bytes; a field name in any ASCII case, blanks, the colon.
func refHeaderScan(data []byte) (n int, date bool, msgID []byte) {
	inMsgID := false
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return
		}
		line := data[:i]
		data = data[i+1:]
		if len(line) == 0 || string(line) == "\r" {
			return
		}
		if len(line) > 300 {
			line = line[:300]
		}
		cont := line[0] == ' ' || line[0] == '\t'
		m := refFieldName.FindSubmatch(line)
		name := ""
		if m != nil {
			name = string(bytes.ToLower(m[1]))
		}
		switch {
		case name == "received":
			n++
		case name == "date":
			date = true
		case name == "message-id" && msgID == nil:
			msgID = append([]byte{}, bytes.TrimSpace(m[2])...)
			inMsgID = true
			continue
		case cont && inMsgID && len(msgID) < 300:
			msgID = append(msgID, bytes.TrimSpace(line)...)
			continue
		}
		if !cont {
			inMsgID = false
		}
	}
}

// FuzzHopCounter: the streaming header scan (loop count, Date and
// Message-ID, RFC 5322 4.5's blanks before the colon included) agrees
// with the reference, whatever the writes the data comes in.
func FuzzHopCounter(f *testing.F) {
	for _, s := range []string{
		"Received: a\r\nReceived : b\r\nDate : now\r\nMessage-ID:\r\n <x@y>\r\n\r\nReceived: body\r\n",
		"received\t:x\r\nMESSAGE-ID :  <a@b> \r\n\t<c@d>\r\nMessage-ID: <e@f>\r\nSubject: s\r\n\r\n",
		"Date\r\nDate:\nReceivedX: y\r\nReceived\r\n: z\r\n\n",
		"X: " + string(bytes.Repeat([]byte("a"), 400)) + "\r\nReceived" + string(bytes.Repeat([]byte(" "), 300)) + ":\r\n\r\n",
	} {
		f.Add([]byte(s), uint16(7), uint16(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, at1, at2 uint16) {
		n, date, msgID := refHeaderScan(data)
		var h hopCounter
		a := min(int(at1), len(data))
		b := min(a+int(at2), len(data))
		h.Write(data[:a])
		h.Write(data[a:b])
		h.Write(data[b:])
		if h.n != n || h.date != date || (h.msgID == nil) != (msgID == nil) || !bytes.Equal(h.msgID, msgID) {
			t.Fatalf("%q: scan got hops=%d date=%v message-id=%q, reference %d %v %q", data, h.n, h.date, h.msgID, n, date, msgID)
		}
		if Hops(data) != n {
			t.Fatalf("%q: Hops %d, reference %d", data, Hops(data), n)
		}
	})
}
