package view

import (
	"bytes"
	"context"
	"fmt"
	"framepush/internal/testutil"
	"framepush/internal/testutil/pushtest"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// outputDir is where a test leaves files worth looking at:
// $FRAMEPUSH_TEST_OUTPUT/<test> when set, else the test's temp dir.
func outputDir(t *testing.T) string {
	if d := os.Getenv("FRAMEPUSH_TEST_OUTPUT"); d != "" {
		dir := filepath.Join(d, t.Name())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

func chromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.Bytes()
}

// The page in a real browser: after its JavaScript ran, every device that
// sent frames has a tile whose image loaded and whose figures the script
// refreshed from /api/devices; one device gone silent is marked stale.
func TestPageInChromium(t *testing.T) {
	bin := testutil.NeedProgram(t, "chromium", "chromium")
	var skew atomic.Int64 // the test's clock runs ahead of the real one by this
	e := start(t, Options{StaleAfter: time.Minute, Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }}, nil)
	p := e.dial(t)
	for i := range 4 {
		p.MustSend("porch", fmt.Sprintf("r1-%d", i+1), pushtest.JPEG(t, i, 640, 480))
	}
	p.MustSend("garden", "r9-1", pushtest.JPEG(t, 5, 640, 480))
	p.MustSend("garden", "r9-3", pushtest.JPEG(t, 6, 640, 480)) // one lost
	p.MustSend("garage", "r4-1", pushtest.JPEG(t, 7, 640, 480))
	// The garage then goes silent for five minutes.
	skew.Store(int64(5 * time.Minute))
	// Fresh frames from the others, so only the garage is stale.
	p.MustSend("porch", "r1-5", pushtest.JPEG(t, 8, 640, 480))
	p.MustSend("garden", "r9-4", pushtest.JPEG(t, 9, 640, 480))

	dom := string(chromium(t, bin, "--virtual-time-budget=5000", "--dump-dom", e.web.URL+"/"))
	if !strings.Contains(dom, `data-live="ok"`) {
		t.Fatalf("the page's script did not refresh from /api/devices:\n%s", dom)
	}
	for _, name := range []string{"porch", "garden", "garage"} {
		re := regexp.MustCompile(`<a class="tile( stale)?" [^>]*data-device="` + name + `"[^>]*>[\s\S]*?</a>`)
		tile := re.FindString(dom)
		if tile == "" || !strings.Contains(tile, `data-live="updated"`) || !regexp.MustCompile(`data-loaded="640x480"`).MatchString(tile) {
			t.Errorf("tile of %s not shown with its loaded image and refreshed figures:\n%s", name, tile)
		}
		if stale := strings.HasPrefix(tile, `<a class="tile stale"`); stale != (name == "garage") {
			t.Errorf("tile of %s: stale %v", name, stale)
		}
	}
	if !strings.Contains(dom, `data-device="garden"`) || !regexp.MustCompile(`data-field="lost"[^>]*>1<`).MatchString(dom) {
		t.Errorf("garden's lost frame is not on the page")
	}

	shot := filepath.Join(outputDir(t), "framerecv-page.png")
	chromium(t, bin, "--virtual-time-budget=5000", "--window-size=1280,800", "--screenshot="+shot, e.web.URL+"/")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil || cfg.Width != 1280 || cfg.Height != 800 {
		t.Fatalf("screenshot %s: %v, %dx%d", shot, err, cfg.Width, cfg.Height)
	}
	t.Logf("screenshot: %s", shot)
}
