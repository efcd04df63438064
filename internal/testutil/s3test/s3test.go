// Package s3test runs a real S3 server for tests: versitygw (posix
// backend on a temporary folder) from the version-keyed tool cache that
// scripts/deps.sh fills (scripts/tools.txt, scripts/lib/tools.sh). Missing
// binary: the test fails when CI=true and is skipped with a clear message
// otherwise. Only tests import it.
package s3test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"framepush/internal/testutil"
)

// Credentials of the test server's root user.
const (
	AccessKey = "framepushtest"
	SecretKey = "framepushtest-secret-key"
)

// Server is one S3 server process: versitygw, or MinIO for the opt-in
// fleet test.
type Server struct {
	t        testing.TB
	bin      string
	args     []string
	env      []string
	Root     string   // versitygw: the posix backend's folder, one sub-folder per bucket
	Drives   []string // MinIO: its drive folders
	Addr     string   // 127.0.0.1:PORT
	Endpoint string   // http://127.0.0.1:PORT
	Log      *testutil.Buffer
	cmd      *exec.Cmd
	exited   chan struct{}
}

// repoRoot is the module root, from this file's path.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// Tool finds the cached binary of a tool pinned in scripts/tools.txt, the
// way scripts/lib/tools.sh does; it fails (CI) or skips the test when the
// binary is missing.
func Tool(t testing.TB, name string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(), "scripts", "tools.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	version := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 3 && fields[0] == name && !strings.HasPrefix(fields[0], "#") {
			version = fields[2]
		}
	}
	if version == "" {
		t.Fatalf("%s is not pinned in scripts/tools.txt", name)
	}
	cache := os.Getenv("FRAMEPUSH_TOOLS")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, _ := os.UserHomeDir()
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "framepush", "tools")
	}
	bin := filepath.Join(cache, name+"@"+version, name)
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("%s %s is not installed at %s: run `bash scripts/deps.sh`", name, version, bin)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// Start runs versitygw on a free loopback port with a fresh root folder;
// it is killed at the end of the test.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, bin: Tool(t, "versitygw"), Root: t.TempDir(), Log: &testutil.Buffer{}}
	s.Addr = freeAddr(t)
	s.args = []string{"--port", s.Addr, "--access", AccessKey, "--secret", SecretKey, "--quiet", "posix", s.Root}
	s.Endpoint = "http://" + s.Addr
	s.start()
	t.Cleanup(func() { s.Kill() })
	return s
}

// StartTLS is Start with TLS: versitygw serves https with the PEM
// certificate and key files given.
func StartTLS(t testing.TB, certFile, keyFile string) *Server {
	t.Helper()
	s := &Server{t: t, bin: Tool(t, "versitygw"), Root: t.TempDir(), Log: &testutil.Buffer{}}
	s.Addr = freeAddr(t)
	s.args = []string{"--port", s.Addr, "--access", AccessKey, "--secret", SecretKey, "--quiet",
		"--cert", certFile, "--key", keyFile, "posix", s.Root}
	s.Endpoint = "https://" + s.Addr
	s.start()
	t.Cleanup(func() { s.Kill() })
	return s
}

// StartMinIO runs the MinIO server binary bin erasure-coded over drives
// folders (MINIO_CI_CD=1 lets them sit on one disk), with the same root
// credentials as versitygw.
func StartMinIO(t testing.TB, bin string, drives int) *Server {
	t.Helper()
	s := &Server{t: t, bin: bin, Root: t.TempDir(), Log: &testutil.Buffer{}}
	s.Addr = freeAddr(t)
	s.Endpoint = "http://" + s.Addr
	s.args = []string{"server", "--quiet", "--address", s.Addr, "--console-address", freeAddr(t)}
	for i := range drives {
		d := filepath.Join(s.Root, fmt.Sprintf("drive%d", i+1))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		s.Drives = append(s.Drives, d)
		s.args = append(s.args, d)
	}
	s.env = []string{"MINIO_CI_CD=1", "MINIO_ROOT_USER=" + AccessKey, "MINIO_ROOT_PASSWORD=" + SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off"}
	s.start()
	t.Cleanup(func() { s.Kill() })
	return s
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (s *Server) start() {
	s.t.Helper()
	cmd := exec.Command(s.bin, s.args...)
	cmd.Env = append(os.Environ(), s.env...)
	cmd.Stdout, cmd.Stderr = s.Log, s.Log
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start versitygw: %v", err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-s.exited:
			s.t.Fatalf("%s exited at start: %s", filepath.Base(s.bin), s.Log.String())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s not listening on %s after 20s: %s", filepath.Base(s.bin), s.Addr, s.Log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Client is a minio-go client with the root credentials.
func (s *Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(s.Addr, &minio.Options{Creds: credentials.NewStaticV4(AccessKey, SecretKey, ""), Region: "us-east-1", TrailingHeaders: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// MakeBucket creates a bucket.
func (s *Server) MakeBucket(t testing.TB, name string) {
	t.Helper()
	// A server that just started listening may still be initialising
	// (MinIO formats its drives): retry for a while.
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.Client(t).MakeBucket(ctx, name, minio.MakeBucketOptions{})
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("make bucket %s: %v\n%s", name, err, s.Log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stop and Cont freeze and thaw the server (SIGSTOP, SIGCONT): it keeps
// its connections but answers nothing.
func (s *Server) Stop() { _ = s.cmd.Process.Signal(syscall.SIGSTOP) }
func (s *Server) Cont() { _ = s.cmd.Process.Signal(syscall.SIGCONT) }

// Kill ends the server with SIGKILL and waits for it.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT)
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart starts the server again on the same port and root.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}

// SetEnv points the AWS_* variables at this server for the test.
func (s *Server) SetEnv(t testing.TB) {
	t.Setenv("AWS_ACCESS_KEY_ID", AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", "us-east-1")
}
