package testredis

import (
	"bufio"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// do sends one inline command and returns the reply: a status or error line
// as sent, a bulk string's value, an array of bulk strings joined by spaces.
func do(t *testing.T, addr, command string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte(command + "\r\n")); err != nil {
		t.Fatalf("%s: %v", command, err)
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("%s: %v", command, err)
	}
	line = strings.TrimSpace(line)
	n := 0
	switch {
	case strings.HasPrefix(line, "$") && line != "$-1":
		n = 1
	case strings.HasPrefix(line, "*"):
		n, _ = strconv.Atoi(line[1:])
		n *= 2 // each element is a "$len" line and a value line
	default:
		return line
	}
	var vals []string
	for i := 0; i < n; i++ {
		next, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: %v", command, err)
		}
		if next = strings.TrimSpace(next); !strings.HasPrefix(next, "$") {
			vals = append(vals, next)
		}
	}
	return strings.Join(vals, " ")
}

func TestStartAnswersWithAppendOnly(t *testing.T) {
	s := Start(t)
	if s.External() {
		t.Skip("checks the configuration of a server that Start runs")
	}
	for cmd, want := range map[string]string{
		"PING":                   "+PONG",
		"CONFIG GET appendonly":  "appendonly yes",
		"CONFIG GET appendfsync": "appendfsync everysec",
		"CONFIG GET save":        "save ",
		"CONFIG GET bind":        "bind 127.0.0.1",
	} {
		if got := do(t, s.Addr(), cmd); got != want {
			t.Errorf("%s = %q, want %q", cmd, got, want)
		}
	}
	if !strings.HasPrefix(s.URL(), "redis://127.0.0.1:") {
		t.Fatalf("URL = %q, want redis://127.0.0.1:PORT/0", s.URL())
	}
}

func TestKillRestartKeepsData(t *testing.T) {
	tests := []struct {
		name string
		down func(s *Server)
	}{
		// SIGTERM makes Redis flush and fsync the append-only file.
		{"stop", func(s *Server) { s.Stop() }},
		// After SIGKILL only what appendfsync everysec wrote survives, so
		// wait past one fsync interval before the crash.
		{"kill", func(s *Server) { time.Sleep(1100 * time.Millisecond); s.Kill() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Start(t)
			if s.External() {
				t.Skip("kills the server")
			}
			addr := s.Addr()
			if got := do(t, addr, "SET greeting hello"); got != "+OK" {
				t.Fatalf("SET = %q", got)
			}
			tt.down(s)
			if ping(addr) == nil {
				t.Fatalf("server still answers after %s", tt.name)
			}
			s.Restart()
			if s.Addr() != addr {
				t.Fatalf("Addr after Restart = %s, want %s", s.Addr(), addr)
			}
			if got := do(t, addr, "GET greeting"); got != "hello" {
				t.Fatalf("GET after restart = %q, want hello", got)
			}
		})
	}
}
