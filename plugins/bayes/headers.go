package bayes

import "strings"

// Header tokens beyond the words of each field.
//
// Fisher's method assumes the tokens of a message are independent
// evidence. The address and list fields break that badly: a mailing list
// writes its name into List-Id, List-Post, List-Help, List-Subscribe,
// List-Unsubscribe, List-Archive, Sender, Errors-To, X-BeenThere and
// Return-Path, and with a prefix per field one list name became some twenty
// tokens that rise and fall together. In cross-validation on TRAIN a ham
// from a list that had carried a few spams scored 1.0 on those twenty
// copies alone. Sharing one prefix ("h:") among these fields turns the
// copies back into one token, which Fisher can weigh fairly.

// sharedPrefix is the prefix of the words of the shared fields.
const sharedPrefix = "h"

// sharedField reports the address, list and routing-identity fields whose
// words share sharedPrefix when TokenizerOptions.ShareAddr is set. Subject,
// From, Content-Type and the mailer fields keep their own prefixes: their
// words say different things than the same words elsewhere.
func sharedField(key string) bool {
	switch key {
	case "to", "cc", "reply-to", "return-path", "sender", "message-id", "organization",
		"errors-to", "x-beenthere", "x-loop", "mailing-list", "x-mailing-list", "precedence":
		return true
	}
	return strings.HasPrefix(key, "list-")
}

// headerOrder emits a token for each pair of adjacent header field names
// ("ho:subject>from"), starting from "^". The order in which a program
// writes its fields fingerprints it: bulk mailers and forged Outlook
// headers have their own (SpamAssassin's header-order rules work on the
// same idea). Received and the site's own fields are left out, since they
// are added on the way and say nothing about the sender's program.
func (t *Tokenizer) headerOrder(set *tokenSet, d *Doc) {
	prev := "^"
	for _, f := range d.Header {
		k := strings.ToLower(f.Name)
		if k == "received" || siteHeader(k) {
			continue
		}
		set.add("ho:" + prev + ">" + k)
		prev = k
	}
}
