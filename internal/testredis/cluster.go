package testredis

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// clusterTimeout bounds how long a cluster may take to form, or to recover
// after a failover, before the test fails.
const clusterTimeout = 60 * time.Second

// Cluster is a Redis Cluster of local redis-servers owned by one test:
// three masters holding every slot, each with one replica when asked for.
type Cluster struct {
	tb       testing.TB
	cli      string
	Masters  []*Server
	Replicas []*Server // Replicas[i] replicates Masters[i] at start
}

// StartCluster starts three redis-servers with cluster mode on (appendonly,
// everysec, like Start), joins them with `redis-cli --cluster create`, and
// waits until every node reports cluster_state:ok. With replicas, three more
// servers join as one replica of each master, so a test can kill a master
// and see its replica promoted. Every server is killed when the test ends.
// RELAY_TEST_REDIS_URL does not apply: a cluster is always started here.
func StartCluster(tb testing.TB, replicas bool) *Cluster {
	tb.Helper()
	bin := lookTool(tb, "redis-server")
	c := &Cluster{tb: tb, cli: lookTool(tb, "redis-cli")}
	n := 3
	if replicas {
		n = 6
	}
	nodes := make([]*Server, n)
	addrs := make([]string, n)
	for i := range nodes {
		bus, err := freeAddr()
		if err != nil {
			tb.Fatalf("testredis: %v", err)
		}
		_, busPort, _ := net.SplitHostPort(bus)
		// The bus port is chosen too: the default, port+10000, can fall
		// outside the port range for an ephemeral port.
		nodes[i] = startLocal(tb, bin, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-port", busPort, "--cluster-node-timeout", "2000")
		addrs[i] = nodes[i].Addr()
	}
	// --cluster create makes the first three masters and gives each a
	// replica from the rest, in order.
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", map[bool]string{false: "0", true: "1"}[replicas], "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, c.cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("testredis: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	c.Masters = nodes[:3]
	if replicas {
		c.Replicas = make([]*Server, 3)
		for _, r := range nodes[3:] {
			m := c.masterOf(r)
			for i, ms := range c.Masters {
				if ms.Addr() == m {
					c.Replicas[i] = r
				}
			}
		}
		for i, r := range c.Replicas {
			if r == nil {
				tb.Fatalf("testredis: master %s got no replica", c.Masters[i].Addr())
			}
		}
	}
	c.WaitOK()
	return c
}

// URL is the cluster's URL in the form redis.ParseClusterURL reads: the
// first master as the seed, every other master as an addr parameter.
func (c *Cluster) URL() string {
	q := url.Values{}
	for _, m := range c.Masters[1:] {
		q.Add("addr", m.Addr())
	}
	return "redis://" + c.Masters[0].Addr() + "?" + q.Encode()
}

// WaitOK waits until every running node reports cluster_state:ok and knows
// of every node, as after a start or a completed failover.
func (c *Cluster) WaitOK() {
	c.tb.Helper()
	deadline := time.Now().Add(clusterTimeout)
	for {
		bad := ""
		for _, s := range c.running() {
			info, err := c.do(s.Addr(), "cluster", "info")
			if err != nil {
				bad = err.Error()
				break
			}
			f := InfoFields(info)
			if f["cluster_state"] != "ok" || f["cluster_slots_ok"] != "16384" {
				bad = fmt.Sprintf("%s: cluster_state:%s cluster_slots_ok:%s", s.Addr(), f["cluster_state"], f["cluster_slots_ok"])
				break
			}
		}
		if bad == "" {
			return
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("testredis: cluster not ok within %v: %s", clusterTimeout, bad)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// KillMaster kills master i with SIGKILL, as a crash would. With replicas it
// then waits until the master's replica is promoted and the cluster is ok
// again; without, the master's slots stay down.
func (c *Cluster) KillMaster(i int) {
	c.tb.Helper()
	c.Masters[i].Kill()
	if c.Replicas == nil {
		return
	}
	deadline := time.Now().Add(clusterTimeout)
	for c.Role(c.Replicas[i]) != "master" {
		if time.Now().After(deadline) {
			c.tb.Fatalf("testredis: replica %s not promoted within %v", c.Replicas[i].Addr(), clusterTimeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.WaitOK()
}

// Role is what INFO replication says a node is now: "master" or "slave".
func (c *Cluster) Role(s *Server) string {
	c.tb.Helper()
	info, err := c.do(s.Addr(), "info", "replication")
	if err != nil {
		c.tb.Fatalf("testredis: %v", err)
	}
	return InfoFields(info)["role"]
}

// running is every node not killed or stopped.
func (c *Cluster) running() []*Server {
	var out []*Server
	for _, s := range append(append([]*Server{}, c.Masters...), c.Replicas...) {
		s.mu.Lock()
		up := s.cmd != nil
		s.mu.Unlock()
		if up {
			out = append(out, s)
		}
	}
	return out
}

// masterOf is the host:port a replica follows.
func (c *Cluster) masterOf(r *Server) string {
	c.tb.Helper()
	deadline := time.Now().Add(clusterTimeout)
	for {
		info, err := c.do(r.Addr(), "info", "replication")
		if err != nil {
			c.tb.Fatalf("testredis: %v", err)
		}
		f := InfoFields(info)
		// A replica counts once its link is up, so a write acknowledged by
		// WAIT is on it from the start.
		if f["master_host"] != "" && f["master_link_status"] == "up" {
			return net.JoinHostPort(f["master_host"], f["master_port"])
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("testredis: %s never became a replica", r.Addr())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// do runs one command on one node with redis-cli and returns its reply.
func (c *Cluster) do(addr string, args ...string) (string, error) {
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, c.cli, append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("redis-cli -p %s %s: %w: %s", port, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
