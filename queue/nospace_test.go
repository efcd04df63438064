//go:build linux

package queue

import (
	"errors"
	"os"
	"os/exec"
	"testing"
)

// smallFS mounts a 2 MiB tmpfs for the test. It needs root (CI runs as
// root); elsewhere the test is skipped with a message.
func smallFS(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a 2 MiB tmpfs needs root; run the tests as root (CI does) to cover a full spool file system")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount a 2 MiB tmpfs: %v: %s", err, out)
		}
		t.Skipf("cannot mount a 2 MiB tmpfs (%v: %s)", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// A full spool file system used to drop the newest frames whatever the
// policy said (every write failed with ENOSPC and the frame was dropped as
// spool-error), with one ERROR line per frame.
func TestFullSpoolFileSystemFollowsDropPolicy(t *testing.T) {
	const size, n = 100 << 10, 60 // 6 MB of frames for 2 MiB of disk
	for _, policy := range []DropPolicy{DropOldest, DropNewest} {
		t.Run(string(policy), func(t *testing.T) {
			dir := smallFS(t)
			q, lb := openQ(t, Options{SpoolDir: dir, MemoryFrames: 2, Drop: policy, NoFsync: true})
			q.SetLinkUp(false) // receiver down: frames go to the spool
			refused := 0
			for i := uint64(1); i <= n; i++ {
				err := q.Put(mkFrame(i, "continuous", size))
				switch {
				case err == nil:
				case errors.Is(err, ErrDropped) && policy == DropNewest:
					refused++
				default:
					t.Fatalf("put %d: %v", i, err)
				}
			}
			st := q.Stats()
			if st.Dropped[ReasonSpoolError] != 0 {
				t.Fatalf("dropped %d as spool-error: a full disk must follow the drop policy", st.Dropped[ReasonSpoolError])
			}
			// Oldest: every write succeeds after evictions; newest: the
			// failures are summarised.
			if got := len(lb.lines("ERROR", "cannot write frame to the spool")); got > 1 {
				t.Errorf("%d ERROR lines for the failed writes, want at most 1 (rate-limited)", got)
			}
			got := drain(t, q)
			if len(got) < 10 {
				t.Fatalf("only %d frames kept on a 2 MiB spool", len(got))
			}
			first, last := got[0].Seq, got[len(got)-1].Seq
			switch policy {
			case DropOldest:
				// The latest picture: the newest frames are kept.
				if last != n || st.Dropped[ReasonFullOldest] == 0 {
					t.Fatalf("kept seqs %d..%d, full-oldest drops %d: want the newest kept", first, last, st.Dropped[ReasonFullOldest])
				}
			case DropNewest:
				if first != 1 || refused == 0 || st.Dropped[ReasonFullNewest] != uint64(refused) {
					t.Fatalf("kept seqs %d..%d, refused %d, full-newest %d: want the oldest kept, the new refused",
						first, last, refused, st.Dropped[ReasonFullNewest])
				}
			}
		})
	}
}
