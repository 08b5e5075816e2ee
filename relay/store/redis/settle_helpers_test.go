package redis

import (
	"context"
	"time"

	"github.com/relaygw/relay/relay/store"
)

// The store records outcomes with one method, Settle. These tests were
// written with a method per outcome, with and without waiting; these are
// those calls on Settle, for the tests only.

func (s *Store) Complete(ctx context.Context, d store.Delivery, a store.Attempt) error {
	return store.SettleWait(ctx, s, d, store.Settlement{State: store.StateDelivered, Attempt: a})
}

func (s *Store) Retry(ctx context.Context, d store.Delivery, a store.Attempt, due time.Time) error {
	return store.SettleWait(ctx, s, d, store.Settlement{State: store.StatePending, Attempt: a, Due: due})
}

func (s *Store) DeadLetter(ctx context.Context, d store.Delivery, a store.Attempt) error {
	return store.SettleWait(ctx, s, d, store.Settlement{State: store.StateDead, Attempt: a})
}

func (s *Store) CompleteAsync(ctx context.Context, d store.Delivery, a store.Attempt, done func(error)) {
	s.Settle(ctx, d, store.Settlement{State: store.StateDelivered, Attempt: a}, done)
}

func (s *Store) RetryAsync(ctx context.Context, d store.Delivery, a store.Attempt, due time.Time, done func(error)) {
	s.Settle(ctx, d, store.Settlement{State: store.StatePending, Attempt: a, Due: due}, done)
}

func (s *Store) DeadLetterAsync(ctx context.Context, d store.Delivery, a store.Attempt, done func(error)) {
	s.Settle(ctx, d, store.Settlement{State: store.StateDead, Attempt: a}, done)
}
