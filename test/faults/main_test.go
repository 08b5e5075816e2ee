package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// relayBin is the relay binary under test, built once without -race: the
// suite is about the promise, and a race build of the relay would spend the
// machine's two cores on instrumentation instead of load.
var relayBin string

// size is the scale of this run: fast (go test, make test) or long
// (FAULTS_LONG=1, make test-faults).
var size = fastSize

// sizes scales every scenario.
type sizes struct {
	name string
	// rate is callbacks per second posted by the load generator.
	rate float64
	// load is how long a scenario posts under its fault.
	load time.Duration
	// kills is how many times the kill scenarios kill the relay (or the
	// agent); outages how many times Redis is killed.
	kills, outages int
	// freeze is how long Redis stays stopped with SIGSTOP.
	freeze time.Duration
	// backlog is how many callbacks queue up while the destination is down.
	backlog int
	// disk is the size of the tmpfs under the full-disk scenario: room for
	// the whole load, so the disk is full only while the filler is there.
	disk string
	// drain bounds the wait for the queue to empty after the load.
	drain time.Duration
}

var (
	fastSize = sizes{name: "fast", rate: 350, load: 6 * time.Second, kills: 3, outages: 2, freeze: 3 * time.Second,
		backlog: 2000, disk: "16m", drain: 90 * time.Second}
	longSize = sizes{name: "long", rate: 1000, load: 60 * time.Second, kills: 5, outages: 5, freeze: 8 * time.Second,
		backlog: 300000, disk: "512m", drain: 20 * time.Minute}
)

func TestMain(m *testing.M) {
	if os.Getenv("FAULTS_LONG") == "1" {
		size = longSize
	}
	dir, err := os.MkdirTemp("", "relay-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	relayBin = filepath.Join(dir, "relay")
	build := exec.Command("go", "build", "-o", relayBin, "../../cmd/relay")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building relay: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
