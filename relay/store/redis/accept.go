package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/relaygw/relay/relay/store"
)

// Accept claims the dedupe key, stores the event and queues one delivery per
// destination, all in one script call that concurrent Accepts share (see
// batch.go). A Dedupe with a zero TTL claims the key with no expiry. An
// event without an ID gets one.
func (s *Store) Accept(ctx context.Context, ev store.Event, dests []string, dd store.Dedupe) (store.AcceptResult, error) {
	if ev.ID == "" {
		ev.ID = store.NewID("evt_")
	}
	if err := s.check(); err != nil {
		return store.AcceptResult{}, fmt.Errorf("redis: accept %s: %w", ev.ID, err)
	}
	r, err := newAcceptReq(ctx, ev, dests, dd)
	if err != nil {
		return store.AcceptResult{}, fmt.Errorf("redis: accept %s: %w", ev.ID, err)
	}
	// The event goes where its dedupe claim is, so that one script claims
	// the key and stores the event (partition.go).
	key := dd.Key
	if key == "" {
		key = ev.ID
	}
	r.pt = s.parts[s.partOf(key)]
	err = s.sender(r.pt).accepts.submit(r)
	return r.res, err
}

// acceptReq is one Accept waiting for its script call.
type acceptReq struct {
	call
	pt   *part // the event's partition
	args []any // this event's part of the script arguments
	res  store.AcceptResult
}

// newAcceptReq prepares ev's part of the accept script's arguments.
func newAcceptReq(ctx context.Context, ev store.Event, dests []string, dd store.Dedupe) (*acceptReq, error) {
	dj, err := destsJSON(dests)
	if err != nil {
		return nil, err
	}
	received := "" // read back as the event's "ca", the script's clock (unpackEvent)
	if !ev.ReceivedAt.IsZero() {
		received = nanos(ev.ReceivedAt)
	}
	var ttl int64
	if dd.Key != "" && dd.TTL > 0 {
		ttl = max(dd.TTL.Milliseconds(), 1)
	}
	e := packEvent([len(packedFields)]string{ev.ID, ev.WebhookID, ev.DedupeKey, ev.ContentType, received, dj}, ev.Body)
	args := append(make([]any, 0, 5+2*len(dests)), ev.ID, dd.Key, ttl, e, len(dests))
	args = appendDerivedRoute(args, ev.ID, dests)
	return &acceptReq{call: newCall(ctx, "accept", ev.ID), args: args}, nil
}

// acceptBatch runs the accept script once for batch, all of partition pt
// unless the script spans the partitions, and sets each request's result.
func (s *Store) acceptBatch(ctx context.Context, pt *part, batch []*acceptReq) {
	n := 0
	for _, r := range batch {
		n += len(r.args)
	}
	// The whole argument list at once, prefix first: s.run would copy it.
	args := append(make([]any, 0, n+2+len(batch)), pt.prefix, len(batch))
	for _, r := range batch {
		args = append(args, r.args...)
	}
	if s.spans { // the batch's events are of any partition
		for _, r := range batch {
			args = append(args, r.pt.prefix)
		}
	}
	arr, err := s.runBatch(ctx, pt, s.sc.accept, args, len(batch))
	s.wrote(err, len(batch))
	for i, r := range batch {
		if err != nil {
			r.err = s.fail("accept", err) // the same for every request (see submit)
		} else if nd, isInt := arr[i].(int64); isInt {
			r.res = store.AcceptResult{EventID: r.id, Deliveries: int(nd)}
		} else { // a duplicate: the id of the event holding the claim
			r.res = store.AcceptResult{EventID: text(arr[i]), Duplicate: true}
		}
	}
}

// ReplayParked routes a parked event to dests, queued due now. With no dests
// the event stays parked.
func (s *Store) ReplayParked(ctx context.Context, id string, dests []string) (int, error) {
	op := "replay parked " + id
	dj, err := destsJSON(dests)
	if err != nil {
		return 0, fmt.Errorf("redis: %s: %w", op, err)
	}
	args := appendRoute([]any{id, dj, len(dests)}, dests)
	var n int64
	err = s.lookup(s.partOf(id), func(pt *part) error {
		reply, err := s.run(ctx, pt, s.sc.replayParked, args...)
		if err != nil {
			return s.fail(op, err)
		}
		if n, err = integer(reply); err != nil {
			return fmt.Errorf("redis: %s: %w", op, err)
		}
		if n < 0 {
			return errNotHere
		}
		return nil
	})
	if errors.Is(err, errNotHere) {
		return 0, fmt.Errorf("redis: %s: %w", op, store.ErrNotFound)
	}
	return int(n), err
}

// ListParked lists parked events, oldest first, with their bodies.
func (s *Store) ListParked(ctx context.Context, p store.Page) ([]store.Event, string, error) {
	hashes, next, err := s.list(ctx, "list parked", "parked", "ev:", p)
	if err != nil {
		return nil, "", err
	}
	items := make([]store.Event, 0, len(hashes))
	for _, h := range hashes {
		ev, err := eventFrom(h)
		if err != nil {
			return nil, "", fmt.Errorf("redis: list parked: %w", err)
		}
		items = append(items, ev)
	}
	return items, next, nil
}

// list reads one page of a sequence-scored set: the hashes of its members
// and the cursor of the next page ("" on the last).
func (s *Store) list(ctx context.Context, op, set, hashPrefix string, p store.Page) ([]map[string]string, string, error) {
	if len(s.parts) > 1 {
		return s.listParts(ctx, op, set, hashPrefix, p)
	}
	if p.Cursor != "" {
		if _, err := strconv.ParseUint(p.Cursor, 10, 64); err != nil {
			return nil, "", fmt.Errorf("redis: %s: %w %q", op, errBadCursor, p.Cursor)
		}
	}
	limit := p.Limit
	if limit <= 0 {
		limit = store.DefaultPageLimit
	}
	reply, err := s.run(ctx, s.parts[0], s.sc.list, set, hashPrefix, p.Cursor, limit)
	if err != nil {
		return nil, "", s.fail(op, err)
	}
	arr, err := array(reply)
	if err != nil || len(arr) == 0 {
		return nil, "", fmt.Errorf("redis: %s: bad reply %v: %v", op, reply, err)
	}
	hashes := make([]map[string]string, 0, len(arr)-1)
	for _, raw := range arr[1:] {
		h, err := fields(raw)
		if err != nil {
			return nil, "", fmt.Errorf("redis: %s: %w", op, err)
		}
		hashes = append(hashes, h)
	}
	return hashes, text(arr[0]), nil
}

// appendRoute appends the destinations and a new delivery id for each, the
// tail of the accept and replay_parked arguments.
func appendRoute(args []any, dests []string) []any {
	for _, d := range dests {
		args = append(args, d)
	}
	for range dests {
		args = append(args, store.NewID("dlv_"))
	}
	return args
}

// appendDerivedRoute is appendRoute for a new event: when the event id is
// "evt_X", delivery i (from 1) is "dlv_X_i", which lets the accept script
// leave its hash unwritten until the first lease (see implicit in
// lua/prelude.lua). Unique because event ids are, and ordered as they are.
func appendDerivedRoute(args []any, evID string, dests []string) []any {
	x, ok := strings.CutPrefix(evID, "evt_")
	if !ok {
		return appendRoute(args, dests)
	}
	for _, d := range dests {
		args = append(args, d)
	}
	for i := range dests {
		args = append(args, "dlv_"+x+"_"+strconv.Itoa(i+1))
	}
	return args
}

// destsJSON encodes dests as json.Marshal does. Destination names are
// plain ASCII in practice and are copied as they are; any name that needs
// escaping sends the list through encoding/json.
func destsJSON(dests []string) (string, error) {
	n := 2
	for _, d := range dests {
		for i := 0; i < len(d); i++ {
			if c := d[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
				b, err := json.Marshal(dests)
				return string(b), err
			}
		}
		n += len(d) + 3
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, d := range dests {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, d...)
		b = append(b, '"')
	}
	b = append(b, ']')
	return string(b), nil
}
