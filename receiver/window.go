package receiver

import (
	"time"

	"framepush/wire"
)

// DefaultMaxWindow is the largest window granted to a pipelining sender
// when Options.MaxWindow is 0. The window costs the receiver nothing but
// socket buffer (it reads and answers one frame after the other); it
// bounds how many frames a sender resends after a broken connection.
const DefaultMaxWindow = 256

// answerSize answers GOT SIZE, preceded by the window acknowledgement
// "WINDOW <n>\n" when the (terminated) SIZE line asked for the pipelining
// extension and it is on. The receiver needs no other change for a
// window: requests are read and answered strictly in order, bytes sent
// behind a terminated SIZE line's payload simply wait in the buffer, and
// the cut-number check applies to unterminated lines only.
func (c *conn) answerSize(req wire.Request) error {
	max := c.s.opt.MaxWindow
	if req.Meta.Window <= 0 || max <= 0 || !req.Terminated {
		return c.answer(answerGotSize)
	}
	w := min(req.Meta.Window, max)
	var b [32]byte
	msg := append(wire.AppendWindowAck(b[:0], w), wire.GotSize...)
	if !c.windowed {
		c.windowed = true
		c.s.m.windowed.Inc()
		c.log.Debug("pipelining", "window", w)
	}
	_ = c.rw.SetWriteDeadline(time.Now().Add(c.s.opt.HandshakeTimeout))
	_, err := c.rw.Write(msg)
	return err
}
