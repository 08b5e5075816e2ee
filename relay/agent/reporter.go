package agent

import (
	"context"
	"fmt"
	"time"
)

// push queues an outcome for the reporter and wakes it.
func (c *Client) push(o outcome) {
	c.mu.Lock()
	if f := c.held[o.Ticket]; f != nil {
		f.finished = true
	}
	c.pending = append(c.pending, o)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// reportLoop sends outcomes as soon as there are any, and a heartbeat (which
// extends the leases of held deliveries) at the interval the relay asks for,
// until ctx ends. Outcomes stay queued until the relay acknowledges them, so
// a connection that fails mid-report loses nothing: the report is sent again
// on the next connection.
func (c *Client) reportLoop(ctx context.Context) {
	fails := 0
	for {
		err := c.report(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			fails++
			if !sleep(ctx, c.down(err, fails)) {
				return
			}
			continue
		}
		fails = 0
		t := time.NewTimer(time.Duration(c.heartbeat.Load()))
		select {
		case <-ctx.Done():
		case <-c.notify:
		case <-t.C:
		}
		t.Stop()
		if ctx.Err() != nil {
			return
		}
	}
}

// report sends one report: the oldest pending outcomes and every other held
// ticket, and applies the relay's answer.
func (c *Client) report(ctx context.Context) error {
	c.mu.Lock()
	outs := append([]outcome(nil), c.pending[:min(len(c.pending), maxReportItems)]...)
	inReport := make(map[string]bool, len(outs))
	for _, o := range outs {
		inReport[o.Ticket] = true
	}
	held := make([]string, 0, len(c.held))
	for tk := range c.held {
		if !inReport[tk] && len(held) < maxReportItems {
			held = append(held, tk)
		}
	}
	c.mu.Unlock()

	var resp reportResponse
	if err := c.call(ctx, PathReport, reportRequest{Outcomes: outs, Held: held}, &resp, c.opts.DeadAfter); err != nil {
		return err
	}
	if len(resp.Acks) != len(outs) {
		return fmt.Errorf("agent: %s: relay acknowledged %d outcomes of %d", PathReport, len(resp.Acks), len(outs))
	}
	c.up(resp.HeartbeatMS)
	c.apply(outs, resp, held)
	return nil
}

// apply drops acknowledged outcomes and abandons the deliveries whose leases
// the relay says are lost.
func (c *Client) apply(outs []outcome, resp reportResponse, held []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
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
	// pending only grew at the end since outs was copied from its start.
	kept := c.pending[:0]
	for _, o := range c.pending {
		if !drop[o.Ticket] {
			kept = append(kept, o)
		}
	}
	c.pending = kept
}

func (c *Client) logAck(ack string, f *flight) {
	switch ack {
	case ackLeaseLost:
		c.log.Warn("agent: outcome reported after the lease ran out; the relay re-offers the delivery (receivers drop repeats by Idempotency-Key)",
			"destination", f.dest, "delivery", f.id)
	case ackInvalid:
		c.log.Error("agent: the relay refused an outcome as not this agent's", "destination", f.dest, "delivery", f.id)
	}
}

// flush makes one last report at shutdown and says what could not be sent.
func (c *Client) flush() {
	c.mu.Lock()
	n := len(c.pending)
	c.mu.Unlock()
	if n == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.DeadAfter)
	defer cancel()
	err := c.report(ctx)
	c.mu.Lock()
	left := len(c.pending)
	c.mu.Unlock()
	if left > 0 {
		c.log.Warn("agent: stopping with outcomes unreported; the relay offers those deliveries again when their leases expire",
			"unreported", left, "error", err)
	}
}
