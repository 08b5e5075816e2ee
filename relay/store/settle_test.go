package store

import (
	"context"
	"errors"
	"testing"
)

type settleFunc func(ctx context.Context, d Delivery, o Settlement, done func(error))

func (f settleFunc) Settle(ctx context.Context, d Delivery, o Settlement, done func(error)) {
	f(ctx, d, o, done)
}

// TestSettleWait: SettleWait hands the settlement over as it is, with a
// context that says a caller waits (a backend commits it sooner), returns
// what done gets, even from another goroutine, and Settle's own callers'
// contexts do not say so.
func TestSettleWait(t *testing.T) {
	boom := errors.New("boom")
	o := Settlement{State: StateDead, Attempt: Attempt{N: 2, Status: 410}}
	var waited bool
	var got Settlement
	s := settleFunc(func(ctx context.Context, d Delivery, in Settlement, done func(error)) {
		waited, got = Waited(ctx), in
		go done(boom)
	})
	if err := SettleWait(context.Background(), s, Delivery{ID: "dlv_1"}, o); !errors.Is(err, boom) {
		t.Errorf("SettleWait = %v, want what done got", err)
	}
	if !waited || got != o {
		t.Errorf("Settle saw waited %v and %+v, want true and %+v", waited, got, o)
	}
	if Waited(context.Background()) {
		t.Error("a plain context says a caller waits")
	}
}
