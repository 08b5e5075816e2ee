package testredis

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EnvURL names the environment variable that points tests at an existing
// Redis server instead of starting one.
const EnvURL = "RELAY_TEST_REDIS_URL"

// startTimeout bounds how long a server may take to answer PING, including
// replaying its append-only file after Restart.
const startTimeout = 15 * time.Second

// Server is a redis-server owned by one test (or an external server named by
// RELAY_TEST_REDIS_URL). Its methods are meant to be called from the test
// that started it.
type Server struct {
	tb       testing.TB
	url      string
	addr     string
	external bool
	bin      string
	dir      string
	extra    []string // more redis-server arguments, after the defaults

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start starts redis-server on a free 127.0.0.1 port in tb.TempDir(), with
// appendonly yes, appendfsync everysec and no RDB snapshots, and waits until
// it answers PING. The server is killed when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return StartWith(tb)
}

// StartWith is Start with more redis-server arguments, which override the
// defaults (e.g. "--appendfsync", "always" for a test that kills the server
// and counts every acknowledged write).
func StartWith(tb testing.TB, args ...string) *Server {
	tb.Helper()
	if raw := os.Getenv(EnvURL); raw != "" {
		u, err := url.Parse(raw)
		if err != nil {
			tb.Fatalf("testredis: %s: %v", EnvURL, err)
		}
		return &Server{tb: tb, url: raw, addr: u.Host, external: true}
	}
	return startLocal(tb, lookTool(tb, "redis-server"), args...)
}

// lookTool finds a program on PATH, skipping the test without it (failing
// it when CI=true).
func lookTool(tb testing.TB, name string) string {
	tb.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("testredis: %s not on PATH (required when CI=true): %v", name, err)
		}
		tb.Skipf("testredis: %s not on PATH: %v", name, err)
	}
	return bin
}

// startLocal starts redis-server bin in a temporary directory of its own.
func startLocal(tb testing.TB, bin string, args ...string) *Server {
	tb.Helper()
	var err error
	s := &Server{tb: tb, bin: bin, dir: tb.TempDir(), extra: args}
	// A port picked as free can be taken before redis-server binds it, so a
	// failed start is tried again on another port.
	for try := 0; ; try++ {
		s.addr, err = freeAddr()
		if err == nil {
			err = s.start()
		}
		if err == nil {
			break
		}
		if try == 2 {
			tb.Fatalf("testredis: %v", err)
		}
	}
	s.url = "redis://" + s.addr + "/0"
	tb.Cleanup(func() { s.signal(syscall.SIGKILL, 0) })
	return s
}

// URL returns the server's redis:// URL.
func (s *Server) URL() string { return s.url }

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.addr }

// External reports whether the server is the one RELAY_TEST_REDIS_URL names,
// which tests must not kill or restart.
func (s *Server) External() bool { return s.external }

// Dir returns the server's data directory ("" for an external server).
func (s *Server) Dir() string { return s.dir }

// Kill ends the server with SIGKILL, as a crash would, and waits for it to
// exit. With an external server the calling test is skipped.
func (s *Server) Kill() {
	s.tb.Helper()
	s.skipExternal("Kill")
	s.signal(syscall.SIGKILL, 0)
}

// Stop shuts the server down with SIGTERM (Redis then flushes its
// append-only file) and waits for it to exit. With an external server the
// calling test is skipped.
func (s *Server) Stop() {
	s.tb.Helper()
	s.skipExternal("Stop")
	s.signal(syscall.SIGTERM, 10*time.Second)
}

// Restart starts the server again on the same port and directory, so it
// reloads its append-only file, and waits until it answers PING. A running
// server is stopped first. With an external server the calling test is
// skipped.
func (s *Server) Restart() {
	s.tb.Helper()
	s.skipExternal("Restart")
	s.signal(syscall.SIGTERM, 10*time.Second)
	if err := s.start(); err != nil {
		s.tb.Fatalf("testredis: restart: %v", err)
	}
}

// Freeze stops the server with SIGSTOP: connections stay open and nothing
// answers, as with a hung host. Thaw resumes it; a frozen server is still
// killed when the test ends. With an external server the calling test is
// skipped.
func (s *Server) Freeze() {
	s.tb.Helper()
	s.skipExternal("Freeze")
	s.send(syscall.SIGSTOP)
}

// Thaw resumes a server stopped by Freeze.
func (s *Server) Thaw() {
	s.tb.Helper()
	s.send(syscall.SIGCONT)
}

// send signals the running server without waiting for anything.
func (s *Server) send(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

func (s *Server) skipExternal(what string) {
	s.tb.Helper()
	if s.external {
		s.tb.Skipf("testredis: %s needs a server started by the test, not %s", what, EnvURL)
	}
}

// start runs redis-server and waits for it to answer PING.
func (s *Server) start() error {
	_, port, err := net.SplitHostPort(s.addr)
	if err != nil {
		return err
	}
	args := append([]string{
		"--port", port, "--bind", "127.0.0.1",
		"--dir", s.dir, "--logfile", "redis.log", "--daemonize", "no",
		"--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
	}, s.extra...)
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-done:
			return fmt.Errorf("redis-server on %s exited at start: %s", s.addr, s.logTail())
		default:
		}
		if ping(s.addr) == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.signal(syscall.SIGKILL, 0)
			return fmt.Errorf("redis-server on %s did not answer PING within %v: %s", s.addr, startTimeout, s.logTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// signal sends sig to a running server and waits for it to exit; after
// grace (when > 0) it falls back to SIGKILL.
func (s *Server) signal(sig syscall.Signal, grace time.Duration) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-done:
			return
		case <-time.After(grace):
			_ = cmd.Process.Kill()
		}
	}
	<-done
}

// logTail returns the end of the server's log, for start errors.
func (s *Server) logTail() string {
	b, err := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return strings.Join(lines, "\n")
}

// ping reports whether the server at addr answers PING with PONG; a server
// still loading its append-only file answers -LOADING and is not ready.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return errors.New(strings.TrimSpace(line))
	}
	return nil
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}
