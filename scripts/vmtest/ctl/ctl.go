// Package ctl is the control protocol between the emulated-board test's
// host driver and its helper inside the qemu guest: one TCP connection
// dialled by the guest to the host (user-mode networking lets the guest
// reach the host, not the reverse), newline-delimited JSON, one request
// answered by one response, in order.
package ctl

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Ops a Request can carry.
const (
	OpHello   = "hello"   // guest → host, first message: Out holds uname -a
	OpExec    = "exec"    // run Cmd with sh -c, wait up to Timeout; Out, RC
	OpStart   = "start"   // run Cmd with sh -c in the background, output to Log; PID
	OpWait    = "wait"    // wait up to Timeout for started PID to exit; Exited, RC
	OpSignal  = "signal"  // send Signal to started PID
	OpPut     = "put"     // write Data to Path with Mode, creating folders
	OpSetTime = "settime" // set the guest clock to UnixNano; Out: the old offset
	OpQuit    = "quit"    // the helper exits; the guest's init powers off
)

// Request is one command from the host.
type Request struct {
	ID       int           `json:"id"`
	Op       string        `json:"op"`
	Cmd      string        `json:"cmd,omitempty"`
	Log      string        `json:"log,omitempty"`
	Path     string        `json:"path,omitempty"`
	Data     []byte        `json:"data,omitempty"`
	Mode     uint32        `json:"mode,omitempty"`
	PID      int           `json:"pid,omitempty"`
	Signal   int           `json:"signal,omitempty"`
	Timeout  time.Duration `json:"timeout,omitempty"`
	UnixNano int64         `json:"unix_nano,omitempty"`
}

// Response answers the Request with the same ID.
type Response struct {
	ID     int    `json:"id"`
	Err    string `json:"err,omitempty"` // the op itself failed (not a non-zero exit)
	Out    string `json:"out,omitempty"`
	RC     int    `json:"rc"`
	PID    int    `json:"pid,omitempty"`
	Exited bool   `json:"exited,omitempty"`
}

// MaxMessage bounds one JSON line (outputs and files are small here).
const MaxMessage = 16 << 20

// Codec reads and writes newline-delimited JSON messages.
type Codec struct {
	r *bufio.Reader
	w io.Writer
}

// NewCodec wraps a connection.
func NewCodec(rw io.ReadWriter) *Codec {
	return &Codec{r: bufio.NewReaderSize(rw, 64<<10), w: rw}
}

// Send writes one message.
func (c *Codec) Send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = c.w.Write(append(b, '\n'))
	return err
}

// Recv reads one message into v.
func (c *Codec) Recv(v any) error {
	var line []byte
	for {
		chunk, isPrefix, err := c.r.ReadLine()
		if err != nil {
			return err
		}
		line = append(line, chunk...)
		if len(line) > MaxMessage {
			return fmt.Errorf("ctl: message over %d bytes", MaxMessage)
		}
		if !isPrefix {
			break
		}
	}
	return json.Unmarshal(line, v)
}
