package main

import (
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// relayBin is the path of the relay binary built once for the tests that
// need a real process (SIGKILL, exit codes), with -race when the tests
// themselves are race-built.
var relayBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "relay-bin-")
	if err != nil {
		panic(err)
	}
	relayBin = filepath.Join(dir, "relay")
	args := []string{"build", "-o", relayBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		os.Stderr.Write(out)
		panic("building relay: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestBinaryRaceMatchesTests: the relay binary the tests run is race-built
// exactly when the tests are, so a plain `go test` does not pay for -race.
func TestBinaryRaceMatchesTests(t *testing.T) {
	info, err := buildinfo.ReadFile(relayBin)
	if err != nil {
		t.Fatal(err)
	}
	race := false
	for _, s := range info.Settings {
		if s.Key == "-race" {
			race = s.Value == "true"
		}
	}
	if race != raceEnabled {
		t.Fatalf("relay binary built with -race=%v, tests with -race=%v", race, raceEnabled)
	}
}
