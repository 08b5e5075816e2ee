package bolt

import (
	"context"
	"time"

	"github.com/relaygw/relay/relay/store"
)

// Shorthands for the settlements these tests make, waiting for the answer
// (store.SettleWait) unless they call Settle themselves.

func delivered(a store.Attempt) store.Settlement {
	return store.Settlement{State: store.StateDelivered, Attempt: a}
}

func complete(ctx context.Context, s store.Settler, d store.Delivery, a store.Attempt) error {
	return store.SettleWait(ctx, s, d, delivered(a))
}

func retry(ctx context.Context, s store.Settler, d store.Delivery, a store.Attempt, due time.Time) error {
	return store.SettleWait(ctx, s, d, store.Settlement{State: store.StatePending, Attempt: a, Due: due})
}

func deadLetter(ctx context.Context, s store.Settler, d store.Delivery, a store.Attempt) error {
	return store.SettleWait(ctx, s, d, store.Settlement{State: store.StateDead, Attempt: a})
}
