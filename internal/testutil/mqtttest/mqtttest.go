// Package mqtttest runs a real mosquitto broker (Debian's mosquitto
// package) on a free loopback port for the tests, and can kill, freeze and
// restart it.
package mqtttest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"framepush/internal/testutil"
)

// Broker is a mosquitto process.
type Broker struct {
	Addr string // 127.0.0.1:port
	URL  string // tcp://127.0.0.1:port

	t    testing.TB
	bin  string
	conf string
	mu   sync.Mutex
	cmd  *exec.Cmd
	log  *bytes.Buffer
	exit chan struct{}
}

// Options secure a broker.
type Options struct {
	// User and Password, when set, are the only credentials accepted
	// (no anonymous access); the password file is made with
	// mosquitto_passwd.
	User, Password string
	// CertFile and KeyFile, when set, make the listener TLS only.
	CertFile, KeyFile string
}

// Start runs mosquitto on a free loopback port, anonymous access, no
// persistence, until the end of the test.
func Start(t testing.TB) *Broker { return StartWith(t, Options{}) }

// StartWith runs mosquitto like Start, with credentials and TLS as o says;
// URL is then ssl://127.0.0.1:port.
func StartWith(t testing.TB, o Options) *Broker {
	t.Helper()
	bin := testutil.NeedProgram(t, "mosquitto", "mosquitto")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	body := fmt.Sprintf("listener %d 127.0.0.1\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n", port)
	if os.Geteuid() == 0 {
		// Started as root, mosquitto switches to the mosquitto user,
		// which cannot read the test's private temp files.
		body += "user root\n"
	}
	scheme := "tcp"
	if o.User != "" {
		pw := filepath.Join(dir, "passwords")
		tool := testutil.NeedProgram(t, "mosquitto_passwd", "mosquitto")
		if out, err := exec.Command(tool, "-b", "-c", pw, o.User, o.Password).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
		}
		body += "allow_anonymous false\npassword_file " + pw + "\n"
	} else {
		body += "allow_anonymous true\n"
	}
	if o.CertFile != "" {
		body += "certfile " + o.CertFile + "\nkeyfile " + o.KeyFile + "\n"
		scheme = "ssl"
	}
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &Broker{Addr: "127.0.0.1:" + strconv.Itoa(port), URL: scheme + "://127.0.0.1:" + strconv.Itoa(port), t: t, bin: bin, conf: conf}
	b.Restart()
	t.Cleanup(b.Kill)
	return b
}

// Restart starts the broker again (after Kill) on the same port, and
// waits until it accepts connections.
func (b *Broker) Restart() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		b.t.Fatal("mqtttest: Restart of a running broker")
	}
	var log bytes.Buffer
	cmd := exec.Command(b.bin, "-c", b.conf)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("starting mosquitto: %v", err)
	}
	b.cmd, b.log, b.exit = cmd, &log, make(chan struct{})
	go func(exit chan struct{}) { cmd.Wait(); close(exit) }(b.exit)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", b.Addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-b.exit:
			b.t.Fatalf("mosquitto exited at start: %s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("mosquitto not accepting on %s after 20 s: %v\n%s", b.Addr, err, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill ends the broker with SIGKILL (no goodbye to its clients) and waits
// for it to exit. It does nothing when the broker is not running.
func (b *Broker) Kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGKILL)
	<-b.exit
	b.cmd = nil
}

// Freeze stops the broker with SIGSTOP: connections stay open but nothing
// is read, like a hung broker. Kill ends a frozen broker too.
func (b *Broker) Freeze() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		b.cmd.Process.Signal(syscall.SIGSTOP)
	}
}
