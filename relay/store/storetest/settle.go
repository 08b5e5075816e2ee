package storetest

import (
	"context"
	"time"

	"github.com/relaygw/relay/relay/store"
)

// Shorthands for the settlements a backend's own tests make, waiting for
// the answer (store.SettleWait).

// Delivered is the settlement of a successful attempt a.
func Delivered(a store.Attempt) store.Settlement {
	return store.Settlement{State: store.StateDelivered, Attempt: a}
}

// Complete records a successful attempt a of d and waits.
func Complete(ctx context.Context, s store.Settler, d store.Delivery, a store.Attempt) error {
	return store.SettleWait(ctx, s, d, Delivered(a))
}

// Retry records a failed attempt a of d, due again at due, and waits.
func Retry(ctx context.Context, s store.Settler, d store.Delivery, a store.Attempt, due time.Time) error {
	return store.SettleWait(ctx, s, d, store.Settlement{State: store.StatePending, Attempt: a, Due: due})
}

// DeadLetter records the last attempt a of d, dead-lettering it, and waits.
func DeadLetter(ctx context.Context, s store.Settler, d store.Delivery, a store.Attempt) error {
	return store.SettleWait(ctx, s, d, store.Settlement{State: store.StateDead, Attempt: a})
}
