package e2e

import (
	"context"
	"encoding/binary"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// `framepush send` of files whose bytes start with ASCII digits, in the
// seed's unterminated SIZE, is stored byte-identical by framerecv: text,
// and a little-endian counter in the first bytes covering 0x30..0x39.
// (framerecv used to answer "ERR protocol payload starts with a digit".)
func TestSendDigitPayloadsToFramerecv(t *testing.T) {
	fp, fr := binaries(t)
	payloads := [][]byte{[]byte("12345 hello")}
	for i := uint32(40); i <= 60; i++ {
		p := payload(200+int(i), uint64(i))
		binary.LittleEndian.PutUint32(p, i)
		payloads = append(payloads, p)
	}
	files := writeFiles(t, payloads)
	for _, mode := range []string{"auto", "seed"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			addr := startFramerecv(t, fr, dir)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			args := append([]string{"send", "--server", addr, "--mode", mode, "--terminator", "none"}, files...)
			out, err := exec.CommandContext(ctx, fp, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("framepush %s: %v\n%s", strings.Join(args[:6], " "), err, out)
			}
			m := manifestOf(payloads)
			if d := m.verify(t, dir); d != 0 {
				t.Errorf("%d duplicates", d)
			}
		})
	}
}
