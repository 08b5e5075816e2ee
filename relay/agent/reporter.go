package agent

import (
	"context"
	"fmt"
	"time"
)

// push queues an outcome for the reporter and wakes it.
func (c *Client) push(o report) {
	c.mu.Lock()
	c.pending = append(c.pending, o)
	if len(c.finished) < maxReportItems {
		c.finished = append(c.finished, o.Ticket)
	}
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// reporters is how many outcome reports may be in flight at once. Each
// waits for the relay's store to commit its outcomes; while one waits, the
// other carries what finished meanwhile, so outcomes keep flowing into the
// store's group commits as a local dispatcher's do. More reports in flight
// made smaller ones: more requests for the same outcomes, and in
// BenchmarkAgent eight ran slower than two.
const reporters = 2

// reportLoop sends outcomes as soon as there are any, until ctx ends.
// Outcomes stay queued until the relay acknowledges them, so a connection
// that fails mid-report loses nothing: the report is sent again on the next
// connection.
func (c *Client) reportLoop(ctx context.Context) {
	c.loop(ctx, false, func() bool {
		if c.unsent() > 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-c.notify:
			return true
		}
	})
}

// heartbeatLoop reports the held deliveries at the interval the relay asks
// for, which extends their leases and tells the relay the agent is alive;
// its answer tells the agent the connection is.
func (c *Client) heartbeatLoop(ctx context.Context) {
	c.loop(ctx, true, func() bool {
		return c.napUntilBeat(ctx, time.Duration(c.heartbeat.Load()), sleep)
	})
}

// napUntilBeat runs nap for d, cut short when up asks for a heartbeat now;
// false when ctx ended.
func (c *Client) napUntilBeat(ctx context.Context, d time.Duration, nap func(context.Context, time.Duration) bool) bool {
	nctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-c.beat:
			cancel()
		case <-done:
		}
	}()
	nap(nctx, d)
	return ctx.Err() == nil
}

// loop makes reports until ctx ends, backing off while they fail, and
// calls next between successful ones; next returns false to stop.
func (c *Client) loop(ctx context.Context, heartbeat bool, next func() bool) {
	fails := 0
	for {
		// A report in flight is not cut short by ctx: its outcomes may be
		// recorded already, and sending them again at shutdown would only
		// earn lease_lost answers. DeadAfter bounds it.
		err := c.report(context.WithoutCancel(ctx), heartbeat)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			fails++
			wait, stop := c.down(err, fails)
			if stop {
				return
			}
			var slept bool
			if heartbeat {
				slept = c.napUntilBeat(ctx, wait, c.opts.Sleep)
			} else {
				slept = c.opts.Sleep(ctx, wait)
			}
			if !slept {
				return
			}
			continue
		}
		fails = 0
		if !next() {
			return
		}
	}
}

// unsent counts the outcomes waiting for a report.
func (c *Client) unsent() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, o := range c.pending {
		if !c.sending[o.Ticket] {
			n++
		}
	}
	return n
}

// report sends one report and applies the relay's answer. An outcome
// report carries the oldest outcomes no other report carries, and is not
// sent when there are none; a heartbeat carries the held tickets, except
// those whose outcome is being recorded (they cannot be extended, and asking
// would get them reported lost).
func (c *Client) report(ctx context.Context, heartbeat bool) error {
	c.mu.Lock()
	var outs []report
	var held []string
	if heartbeat {
		held = make([]string, 0, len(c.held))
		for tk := range c.held {
			if !c.sending[tk] && len(held) < maxReportItems {
				held = append(held, tk)
			}
		}
	} else {
		for _, o := range c.pending {
			if len(outs) < maxReportItems && !c.sending[o.Ticket] {
				outs = append(outs, o)
				c.sending[o.Ticket] = true
			}
		}
		if len(outs) == 0 {
			c.mu.Unlock()
			return nil
		}
	}
	c.mu.Unlock()

	var resp reportResponse
	err := c.call(ctx, PathReport, reportRequest{Reports: outs, Held: held}, &resp, c.opts.DeadAfter)
	if err == nil && len(resp.Acks) != len(outs) {
		err = fmt.Errorf("agent: %s: relay acknowledged %d outcomes of %d", PathReport, len(resp.Acks), len(outs))
	}
	c.mu.Lock()
	// In one step with apply: an outcome neither sending nor acknowledged
	// would be picked up by another report and recorded twice.
	for _, o := range outs {
		delete(c.sending, o.Ticket)
	}
	if err == nil {
		c.apply(outs, resp, held)
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	c.up(resp.HeartbeatMS)
	return nil
}

// apply drops acknowledged outcomes and abandons the deliveries whose leases
// the relay says are lost. c.mu must be held.
func (c *Client) apply(outs []report, resp reportResponse, held []string) {
	drop := map[string]bool{}
	for i, ack := range resp.Acks {
		if ack == ackRetry {
			continue
		}
		tk := outs[i].Ticket
		drop[tk] = true
		if f := c.held[tk]; f != nil {
			c.logAck(ack, f)
		}
		delete(c.held, tk)
	}
	for _, i := range resp.Lost {
		if i < 0 || i >= len(held) {
			continue
		}
		if f := c.held[held[i]]; f != nil {
			f.lost = true
			f.cancel()
			delete(c.held, held[i])
		}
		drop[held[i]] = true
	}
	kept := c.pending[:0]
	for _, o := range c.pending {
		if !drop[o.Ticket] {
			kept = append(kept, o)
		}
	}
	c.pending = kept
	for range min(len(drop), cap(c.acked)) {
		select {
		case c.acked <- struct{}{}:
		default:
		}
	}
}

func (c *Client) logAck(ack string, f *flight) {
	switch ack {
	case ackLeaseLost:
		c.log.Warn("agent: the relay held no lease for this outcome: it ran out (the delivery is offered again; receivers drop repeats by Idempotency-Key) or an earlier copy of the report was recorded",
			"destination", f.dest, "delivery", f.id)
	case ackInvalid:
		c.log.Error("agent: the relay refused an outcome as not this agent's", "destination", f.dest, "delivery", f.id)
	}
}

// flush reports what is left at shutdown and says what could not be sent.
func (c *Client) flush() {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.DeadAfter)
	defer cancel()
	var err error
	for c.unsent() > 0 && err == nil {
		err = c.report(ctx, false)
	}
	if left := c.unsent(); left > 0 {
		c.log.Warn("agent: stopping with outcomes unreported; the relay offers those deliveries again when their leases expire",
			"unreported", left, "error", err)
	}
}
