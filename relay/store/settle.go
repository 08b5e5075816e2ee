package store

import (
	"context"
	"time"
)

// Settlement is what Store.Settle records of one attempt of a leased
// delivery: the attempt, and where the delivery goes.
type Settlement struct {
	// State is where the delivery goes: StateDelivered (the attempt
	// succeeded; it is finished), StatePending (it failed and is due again
	// at Due) or StateDead (it failed for good; it goes to the DLQ).
	State   DeliveryState
	Attempt Attempt
	// Due is when a StatePending delivery is attempted again.
	Due time.Time
}

// Settler is the part of Store that SettleWait needs.
type Settler interface {
	Settle(ctx context.Context, d Delivery, o Settlement, done func(error))
}

// SettleWait is Settle for a caller that waits: it returns what done would
// get.
func SettleWait(ctx context.Context, s Settler, d Delivery, o Settlement) error {
	errc := make(chan error, 1)
	s.Settle(context.WithValue(ctx, waiterKey{}, true), d, o, func(err error) { errc <- err })
	return <-errc
}

type waiterKey struct{}

// Awaiting returns ctx marked as a caller's that waits for the answers of
// the Settle calls it makes with ctx before it goes on, though it takes them
// through done (an agent's report, answered once its outcomes are durable):
// a backend that holds outcomes back to share a commit holds these back as
// little as a SettleWait's.
func Awaiting(ctx context.Context) context.Context {
	return context.WithValue(ctx, awaitKey{}, true)
}

type awaitKey struct{}

// Awaited reports whether ctx is an Awaiting one.
func Awaited(ctx context.Context) bool { return ctx.Value(awaitKey{}) != nil }

// Waited reports whether ctx is a SettleWait's, whose caller waits for the
// answer: a backend that holds outcomes back to share a commit holds one
// that someone waits for back less.
func Waited(ctx context.Context) bool { return ctx.Value(waiterKey{}) != nil }
