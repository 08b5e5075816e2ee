package faults

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/relaygw/relay/internal/testredis"
)

// slack is how long before a fault a duplicate's first delivery may lie:
// an attempt that had reached the receiver, or a lease still held, when the
// process died. The destination timeout plus the lease, plus a second for
// the outcome's commit.
func (s relaySpec) slack() time.Duration {
	return s.timeout + s.lease + time.Second
}

// spec fills in the defaults startRelay would, so slack can be computed.
func spec(name string) relaySpec {
	return relaySpec{name: name, timeout: 2 * time.Second, lease: 3 * time.Second}
}

// startRedis starts a redis-server that fsyncs every write: the setting
// under which a killed Redis keeps everything it acknowledged (see the
// README on Redis durability).
func startRedis(t *testing.T) *testredis.Server {
	t.Helper()
	return testredis.StartWith(t, "--appendfsync", "always")
}

// pause injects faults at evenly spaced moments of the load: it sleeps
// load/(n+1) before each of n calls of f.
func pause(n int, f func(i int)) {
	every := size.load / time.Duration(n+1)
	for i := range n {
		time.Sleep(every)
		f(i)
	}
}

// The embedded relay is killed with SIGKILL several times under load and
// started again on the same store each time.
func TestKillEmbedded(t *testing.T) {
	s := newSink(t)
	s.delay.Store(int64(10 * time.Millisecond))
	sp := spec("relay")
	sp.embedded, sp.sinkURL = t.TempDir(), s.URL()
	r := startRelay(t, sp)
	g := newLoadGen("kill", r.ingestURL())
	var fs faults
	start := time.Now()
	wait := loadFor(t, g, size.rate, size.load)
	pause(size.kills, func(int) {
		end := fs.begin("kill -9 relay")
		r.kill()
		r.start()
		end()
	})
	wait()
	checkLedger(t, g, s, []string{r.adminURL()}, &fs, sp.slack(), start)
}

// Redis is killed with SIGKILL under load and restarted on its append-only
// file after a second.
func TestRedisKilled(t *testing.T) {
	rs := startRedis(t)
	s := newSink(t)
	sp := spec("relay")
	sp.redisURL, sp.sinkURL = rs.URL(), s.URL()
	r := startRelay(t, sp)
	g := newLoadGen("rkill", r.ingestURL())
	var fs faults
	start := time.Now()
	wait := loadFor(t, g, size.rate, size.load)
	pause(size.outages, func(int) {
		end := fs.begin("kill -9 redis")
		rs.Kill()
		time.Sleep(time.Second)
		rs.Restart()
		end()
	})
	wait()
	checkLedger(t, g, s, []string{r.adminURL()}, &fs, sp.slack(), start)
}

// Redis is frozen with SIGSTOP under load (connections stay open, nothing
// answers) and thawed with SIGCONT.
func TestRedisFrozen(t *testing.T) {
	rs := startRedis(t)
	s := newSink(t)
	sp := spec("relay")
	sp.redisURL, sp.sinkURL = rs.URL(), s.URL()
	r := startRelay(t, sp)
	pid := redisPID(t, rs.URL())
	g := newLoadGen("freeze", r.ingestURL())
	var fs faults
	start := time.Now()
	wait := loadFor(t, g, size.rate, size.load)
	pause(1, func(int) {
		end := fs.begin("SIGSTOP redis")
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		// SIGKILL ends a stopped process too, so the cleanup holds.
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT) })
		time.Sleep(size.freeze)
		syscall.Kill(pid, syscall.SIGCONT)
		end()
	})
	wait()
	checkLedger(t, g, s, []string{r.adminURL()}, &fs, sp.slack(), start)
}

// redisPID asks the server for its process id (testredis keeps the
// process to itself).
func redisPID(t *testing.T, url string) int {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	info, err := c.Info(t.Context(), "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(testredis.InfoFields(info)["process_id"])
	if err != nil || pid <= 0 {
		t.Fatalf("INFO server: process_id: %v", err)
	}
	return pid
}

// Two relays share one Redis; one is killed with SIGKILL under load and
// stays dead. The survivor takes the callbacks and the dead one's leased
// deliveries.
func TestTwoRelaysOneKilled(t *testing.T) {
	rs := startRedis(t)
	s := newSink(t)
	s.delay.Store(int64(20 * time.Millisecond))
	sp := spec("relay-a")
	sp.redisURL, sp.sinkURL = rs.URL(), s.URL()
	a := startRelay(t, sp)
	sp.name = "relay-b"
	b := startRelay(t, sp)
	g := newLoadGen("pair", a.ingestURL(), b.ingestURL())
	var aDead atomic.Bool
	g.targets = func() []string {
		if aDead.Load() {
			return []string{b.ingestURL()}
		}
		return []string{a.ingestURL(), b.ingestURL()}
	}
	var fs faults
	start := time.Now()
	wait := loadFor(t, g, size.rate, size.load)
	var killed time.Time
	pause(1, func(int) {
		// Hold relay-a's requests open for a moment, so that it dies
		// with deliveries leased and in flight.
		s.hold.Store(&a.name)
		time.Sleep(300 * time.Millisecond)
		end := fs.begin("kill -9 relay-a")
		killed = time.Now()
		a.kill()
		aDead.Store(true)
		end()
	})
	wait()
	fs.measure = func(l *ledger) {
		took, n, ok := s.takeover(killed)
		if !ok || n == 0 {
			t.Errorf("takeover: %d deliveries held by relay-a when it died, all delivered since: %v", n, ok)
		}
		l.TakeoverMS, l.TakenOver = took.Milliseconds(), n
	}
	checkLedger(t, g, s, []string{b.adminURL()}, &fs, sp.slack(), start)
}

// One destination answers 500 and 200 by turns under load; the other is
// healthy. Nothing may be lost and, with no crash, nothing delivered twice.
func TestDestinationFlapping(t *testing.T) {
	s := newSink(t)
	s.modes["crm"].Store(modeFlap)
	sp := spec("relay")
	sp.embedded, sp.sinkURL = t.TempDir(), s.URL()
	r := startRelay(t, sp)
	g := newLoadGen("flap", r.ingestURL())
	start := time.Now()
	loadFor(t, g, size.rate, size.load)()
	s.setMode(modeUp)
	checkLedger(t, g, s, []string{r.adminURL()}, &faults{}, sp.slack(), start)
}

// The embedded store's disk fills up under load (a small tmpfs and a file
// that takes what is left), then the file is removed. Callbacks refused
// meanwhile are retried by the provider; nothing answered 2xx is lost.
func TestFullDisk(t *testing.T) {
	disk := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(disk, 0o700); err != nil {
		t.Fatal(err)
	}
	mountTmpfs(t, disk, size.disk)
	s := newSink(t)
	sp := spec("relay")
	sp.embedded, sp.sinkURL = filepath.Join(disk, "data"), s.URL()
	r := startRelay(t, sp)
	g := newLoadGen("disk", r.ingestURL())
	var fs faults
	start := time.Now()
	wait := loadFor(t, g, size.rate, size.load)
	filler := filepath.Join(disk, "filler")
	pause(1, func(int) {
		end := fs.begin("disk full")
		fillDisk(t, disk, filler)
		// Long enough for the relay to hit the full disk on ingest and
		// on delivery outcomes.
		time.Sleep(size.load / 2)
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		end()
	})
	wait()
	if ok, err := r.exited(); ok {
		t.Fatalf("the relay exited on a full disk: %v\n%s", err, r.logTail(20))
	}
	refused := 0
	for _, as := range g.snapshot() {
		for _, a := range as {
			if !a.ok() {
				refused++
			}
		}
	}
	t.Logf("answers other than 2xx while the disk was full: %d", refused)
	if refused == 0 {
		t.Errorf("no callback was refused: the disk never filled, the scenario tested nothing")
	}
	checkLedger(t, g, s, []string{r.adminURL()}, &fs, sp.slack(), start)
}

// mountTmpfs mounts a tmpfs of the given size on dir until the test ends.
// Mounting needs root: an unprivileged run skips; a root run that cannot
// mount fails under CI=true and skips elsewhere.
func mountTmpfs(t *testing.T, dir, sz string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("full disk: mounting a small tmpfs needs root; run the suite as root to test a full disk")
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+sz, "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("full disk: mount -t tmpfs failed as root (a container without CAP_SYS_ADMIN?): %v %s", err, out)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
}

// fillDisk writes a file that takes all but a few pages of dir's
// filesystem.
func fillDisk(t *testing.T, dir, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64*1024)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatal(err)
		}
	}
}

// Both destinations are down while a backlog is accepted, then come up and
// the backlog drains.
func TestBacklog(t *testing.T) {
	s := newSink(t)
	s.setMode(modeDown)
	sp := spec("relay")
	sp.embedded, sp.sinkURL = t.TempDir(), s.URL()
	r := startRelay(t, sp)
	g := newLoadGen("backlog", r.ingestURL())
	start := time.Now()
	g.backlog(t.Context(), size.backlog, 2*size.rate)
	s.setMode(modeUp)
	checkLedger(t, g, s, []string{r.adminURL()}, &faults{}, sp.slack(), start)
}

// A backlog drains at full speed, and the relay is killed with SIGKILL in
// the middle of the drain, then started again.
func TestKillDuringDrain(t *testing.T) {
	s := newSink(t)
	s.setMode(modeDown)
	sp := spec("relay")
	sp.embedded, sp.sinkURL = t.TempDir(), s.URL()
	r := startRelay(t, sp)
	g := newLoadGen("drainkill", r.ingestURL())
	start := time.Now()
	g.backlog(t.Context(), size.backlog, 2*size.rate)
	full, _, err := depths(r.adminURL())
	if err != nil {
		t.Fatal(err)
	}
	s.setMode(modeUp)
	// Kill once a third of the backlog is delivered (bounded: kill anyway
	// after two minutes).
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if q, _, err := depths(r.adminURL()); err == nil && q < full*2/3 {
			break
		}
	}
	var fs faults
	end := fs.begin("kill -9 relay during drain")
	r.kill()
	r.start()
	end()
	checkLedger(t, g, s, []string{r.adminURL()}, &fs, sp.slack(), start)
}

// SIGTERM under load: the relay drains and exits 0, and is started again.
// A clean stop is not a crash, so no duplicate delivery is allowed.
func TestSIGTERMUnderLoad(t *testing.T) {
	s := newSink(t)
	s.delay.Store(int64(10 * time.Millisecond))
	sp := spec("relay")
	sp.embedded, sp.sinkURL = t.TempDir(), s.URL()
	r := startRelay(t, sp)
	g := newLoadGen("term", r.ingestURL())
	start := time.Now()
	wait := loadFor(t, g, size.rate, size.load)
	pause(2, func(int) {
		if err := r.term(30 * time.Second); err != nil {
			t.Errorf("relay after SIGTERM: %v, want exit 0", err)
		}
		r.start()
	})
	wait()
	checkLedger(t, g, s, []string{r.adminURL()}, &faults{}, sp.slack(), start)
}

// 50 copies of each of 20 mids are posted at the same moment: each mid is
// accepted exactly once and delivered exactly once per destination. On the
// embedded store, on Redis, and spread over two relays on one Redis.
func TestConcurrentDuplicates(t *testing.T) {
	const mids, copies = 20, 50
	tests := []struct {
		name   string
		relays int
		redis  bool
	}{
		{"embedded", 1, false},
		{"redis", 1, true},
		{"two relays on one redis", 2, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSink(t)
			sp := spec("relay")
			sp.sinkURL = s.URL()
			if tc.redis {
				sp.redisURL = startRedis(t).URL()
			} else {
				sp.embedded = t.TempDir()
			}
			var rs []*relayProc
			var ingest, admin []string
			for i := range tc.relays {
				sp.name = fmt.Sprintf("relay-%d", i)
				r := startRelay(t, sp)
				rs = append(rs, r)
				ingest, admin = append(ingest, r.ingestURL()), append(admin, r.adminURL())
			}
			g := newLoadGen("dup", ingest...)
			start := time.Now()
			var wg sync.WaitGroup
			gate := make(chan struct{})
			for m := range mids {
				mid := fmt.Sprintf("dup-%02d", m)
				for c := range copies {
					target := ingest[c%len(ingest)]
					wg.Go(func() {
						<-gate
						g.post(target, mid)
					})
				}
			}
			close(gate)
			wg.Wait()
			// Copies refused (a store or pool timeout on a loaded machine)
			// are retried by checkLedger like any provider retry; among
			// those that reached the store, one alone may be accepted.
			refused := 0
			for mid, as := range g.snapshot() {
				accepted := 0
				for _, a := range as {
					switch {
					case !a.ok():
						refused++
					case a.status == "accepted":
						accepted++
					}
				}
				if accepted > 1 {
					t.Errorf("mid %s: %d of %d simultaneous copies accepted, want 1", mid, accepted, len(as))
				}
			}
			if refused > 0 {
				t.Logf("%d of %d simultaneous copies refused", refused, mids*copies)
			}
			checkLedger(t, g, s, admin, &faults{}, sp.slack(), start)
		})
	}
}

// An agent (the real `relay agent` binary) delivers for both destinations
// and is killed with SIGKILL mid-delivery; a new agent takes over once the
// dead one's leases run out: after delivery.lease, which agent deliveries
// follow like local ones.
func TestAgentKilled(t *testing.T) {
	s := newSink(t)
	s.delay.Store(int64(5 * time.Millisecond))
	const lease = 2 * time.Second
	const token = "faults-agent-token-0123456789"
	r := startRelay(t, relaySpec{name: "relay-agent", embedded: t.TempDir(), sinkURL: s.URL(), lease: lease,
		agent: "office-1", agentToken: token})
	ag := startAgent(t, "office-1", token, r.ingestURL())
	g := newLoadGen("agent", r.ingestURL())
	var fs faults
	start := time.Now()
	wait := loadFor(t, g, size.rate, size.load)
	pause(size.outages, func(int) {
		end := fs.begin("kill -9 agent")
		ag.kill()
		ag.start()
		end()
	})
	wait()
	checkLedger(t, g, s, []string{r.adminURL()}, &fs, lease+2*time.Second+time.Second, start)
}
