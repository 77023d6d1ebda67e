package smtpd

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/portcullis-mta/portcullis/core/smtperr"
)

// noSpaceText goes with RFC 3463 4.3.1, "mail system full": the sender should
// retry later, and nothing is accepted that the spool could not hold.
const noSpaceText = "Insufficient system storage"

// spaceFor checks, at MAIL, that the spool's file system has room for a
// message of size bytes (the SIZE parameter, 0 if none) with queue.min_free
// left over, as Postfix's smtpd does with queue_minfree: it needs min_free
// plus 1.5 times size free. A spool whose file system cannot be read does
// not stop mail here; writing the message will tell.
func (g *generation) spaceFor(size int64) error {
	minFree := g.cfg.Queue.MinFree
	if minFree <= 0 && size <= 0 {
		return nil
	}
	free, err := freeBytes(g.cfg.Queue.Dir)
	if err != nil {
		return nil
	}
	need := uint64(max(minFree, 0)) + uint64(size)/2*3
	if free < need {
		return smtperr.Wrap(fmt.Errorf("spool %s: %d bytes free, %d needed (queue.min_free %d, SIZE %d)",
			g.cfg.Queue.Dir, free, need, minFree, size), 452, "4.3.1", noSpaceText)
	}
	return nil
}

// storageError is the reply to a failure to spool or commit a message:
// 452 4.3.1 when the disk or a quota is full, else 451 4.3.0.
func storageError(err error) *smtperr.Error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return smtperr.Wrap(err, 452, "4.3.1", noSpaceText)
	}
	return smtperr.Wrap(err, 451, "4.3.0", "Temporary local problem, try again later")
}
