package dkimsign

import (
	"io"
	"sync/atomic"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// Live is a Signer that a config reload can replace (new or rotated keys
// on SIGHUP) while deliveries go on: each Sign uses the keys current when
// it starts. The zero value signs nothing until Load.
type Live struct {
	cur atomic.Pointer[Signer]
}

// Load reads the keys of c and makes them current. On error the old keys
// stay, as a bad config is refused whole.
func (l *Live) Load(c config.DKIM) error {
	s, err := FromConfig(c)
	if err != nil {
		return err
	}
	l.cur.Store(s)
	return nil
}

// Sign signs with the current keys; see Signer.Sign.
func (l *Live) Sign(env *queue.Envelope, msg io.Reader) (io.Reader, error) {
	s := l.cur.Load()
	if s == nil {
		return msg, nil
	}
	return s.Sign(env, msg)
}
