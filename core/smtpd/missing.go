package smtpd

import (
	"fmt"
	"strings"
	"time"
)

// missingFields are the Message-ID and Date fields a message from our own
// users lacks, to add at commit, as Postfix's cleanup adds them for its
// local clients (local_header_rewrite_clients) and RFC 6409 8.3 and 8.6
// let a submission server: a copier or a script that writes neither has its
// mail refused by large mailbox providers (Gmail answers 550 5.7.1 to a
// message without a Message-ID) and sorted oddly by readers without a Date.
// Only for a client in relay.networks or one that authenticated: mail
// from the internet is passed on as it came, as Postfix does (RFC 5321
// 6.1). Added with the message's queue ID, so the log's message_id= names it.
func (s *session) missingFields(id string, p headerPlan) (fields, msgID string) {
	if !s.authed && !s.gc.srv.d.Policy.Trusted(s.gc.info.ip) {
		return "", ""
	}
	adds := func(name string) bool {
		for _, e := range p.add {
			if strings.EqualFold(e.Name, name) {
				return true
			}
		}
		return false
	}
	var b strings.Builder
	now := s.gc.srv.d.Now()
	if !s.hasMsgID && !adds("Message-ID") {
		msgID = fmt.Sprintf("<%s.%s@%s>", now.UTC().Format("20060102150405"), id, s.gc.srv.cfg.Hostname)
		b.WriteString("Message-ID: " + msgID + "\r\n")
	}
	if !s.hasDate && !adds("Date") {
		b.WriteString("Date: " + now.Format(time.RFC1123Z) + "\r\n")
	}
	return b.String(), msgID
}
