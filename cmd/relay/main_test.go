package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// relayBin is the path of the relay binary built once for the tests that
// need a real process (SIGKILL, exit codes).
var relayBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "relay-bin-")
	if err != nil {
		panic(err)
	}
	relayBin = filepath.Join(dir, "relay")
	out, err := exec.Command("go", "build", "-race", "-o", relayBin, ".").CombinedOutput()
	if err != nil {
		os.Stderr.Write(out)
		panic("building relay: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
