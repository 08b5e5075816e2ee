package faults

import (
	"strings"
	"testing"
	"time"
)

// The ledger check itself: each way the promise can break is reported, and
// a ledger that balances reports nothing.
func TestBalance(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	acc := func(id string) answer { return answer{at: t0, code: 202, status: "accepted", eventID: id} }
	dup := func(id string) answer { return answer{at: t0, code: 202, status: "duplicate", eventID: id} }
	refused := answer{at: t0, code: 503}
	both := func(id string, ms ...int) map[dmKey][]delivery {
		out := map[dmKey][]delivery{}
		for _, d := range destinations {
			for _, m := range ms {
				k := dmKey{d, "m1"}
				out[k] = append(out[k], delivery{at: at(m), eventID: id})
			}
		}
		return out
	}
	// A kill at +10s, service back at +11s; slack 3s before.
	kill := []window{{what: "kill", start: at(10_000), end: at(11_000)}}
	tests := []struct {
		name    string
		answers []answer
		got     map[dmKey][]delivery
		ws      []window
		want    string // a problem that must be reported; "" for none
		lost    int
	}{
		{"balanced", []answer{refused, acc("e1"), dup("e1")}, both("e1", 100), nil, "", 0},
		{"answered 2xx, delivered nowhere", []answer{acc("e1")}, nil, nil, "LOST: mid m1", 2},
		{"answered 2xx, one destination missing", []answer{acc("e1")},
			map[dmKey][]delivery{{"crm", "m1"}: {{at: at(1), eventID: "e1"}}}, nil, "never delivered to archive", 1},
		{"duplicate answer only, never delivered", []answer{refused, dup("e1")}, nil, nil, "LOST", 2},
		{"refused only, never delivered: not a loss", []answer{refused}, nil, nil, "", 0},
		{"accepted twice", []answer{acc("e1"), acc("e1")}, both("e1", 100), nil, "accepted 2 times", 0},
		{"two event ids in answers", []answer{acc("e1"), dup("e2")}, both("e1", 100), nil, "2 event ids", 0},
		{"delivery under another event id", []answer{acc("e1")}, both("e2", 100), nil, "2 event ids", 0},
		{"duplicate delivery, no fault", []answer{acc("e1")}, both("e1", 100, 200), nil, "outside every fault window", 0},
		{"duplicate delivery long before the kill", []answer{acc("e1")}, both("e1", 5_000, 11_500), kill, "outside every fault window", 0},
		{"duplicate delivery just before the kill", []answer{acc("e1")}, both("e1", 9_000, 11_500), kill, "", 0},
		{"duplicate delivery long after the restart", []answer{acc("e1")}, both("e1", 13_000, 13_500), kill, "outside every fault window", 0},
		{"2xx with an unknown status", []answer{{at: t0, code: 200, status: "weird", eventID: "e1"}}, both("e1", 1), nil, `status "weird"`, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			answers := map[string][]answer{"m1": tc.answers}
			got := tc.got
			if got == nil {
				got = map[dmKey][]delivery{}
			}
			l, _, problems := balance(answers, got, tc.ws, 3*time.Second)
			joined := strings.Join(problems, "\n")
			switch {
			case tc.want == "" && len(problems) > 0:
				t.Errorf("problems %q, want none", joined)
			case tc.want != "" && !strings.Contains(joined, tc.want):
				t.Errorf("problems %q, want one with %q", joined, tc.want)
			}
			if l.Lost != tc.lost {
				t.Errorf("Lost = %d, want %d", l.Lost, tc.lost)
			}
		})
	}

	t.Run("delivered mid never posted", func(t *testing.T) {
		got := map[dmKey][]delivery{{"crm", "ghost"}: {{at: t0, eventID: "e9"}}}
		_, _, problems := balance(map[string][]answer{}, got, nil, time.Second)
		if !strings.Contains(strings.Join(problems, "\n"), "never posted") {
			t.Errorf("problems %q, want a delivery of a mid never posted", problems)
		}
	})
}
