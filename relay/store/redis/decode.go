package redis

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/relaygw/relay/relay/store"
)

// Script replies arrive as go-redis values: arrays as []any, bulk strings as
// string (binary safe, so []byte(s) gives back the exact bytes), integers as
// int64.

// fields turns a flat HGETALL reply [k1 v1 k2 v2 ...] into a map.
func fields(v any) (map[string]string, error) {
	arr, ok := v.([]any)
	if !ok || len(arr)%2 != 0 {
		return nil, fmt.Errorf("unexpected hash reply %T", v)
	}
	m := make(map[string]string, len(arr)/2)
	for i := 0; i < len(arr); i += 2 {
		m[text(arr[i])] = text(arr[i+1])
	}
	return m, nil
}

// array asserts that a reply is an array.
func array(v any) ([]any, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("unexpected reply %T, want array", v)
	}
	return arr, nil
}

// integer reads an integer reply.
func integer(v any) (int64, error) {
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("unexpected reply %T, want integer", v)
	}
	return n, nil
}

func text(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case int64:
		return strconv.FormatInt(x, 10)
	default:
		return ""
	}
}

// nanos formats a time as the Unix nanoseconds the hashes store.
func nanos(t time.Time) string {
	return strconv.FormatInt(t.UnixNano(), 10)
}

// millis formats a time as a queue score.
func millis(t time.Time) string {
	return strconv.FormatInt(t.UnixMilli(), 10)
}

func parseNanos(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// eventFrom decodes an event hash. It unpacks h in place first (see
// unpackEvent), so that deliveryIDs and implicitDelivery can read h after it.
func eventFrom(h map[string]string) (store.Event, error) {
	if err := unpackEvent(h); err != nil {
		return store.Event{}, err
	}
	ev := store.Event{
		ID:          h["id"],
		WebhookID:   h["wh"],
		DedupeKey:   h["dk"],
		ContentType: h["ct"],
		Body:        []byte(h["body"]),
		ReceivedAt:  parseNanos(h["rcv"]),
		Parked:      h["parked"] == "1",
	}
	if d := h["dests"]; d != "" {
		if err := json.Unmarshal([]byte(d), &ev.Destinations); err != nil {
			return ev, fmt.Errorf("event %s: destinations: %w", ev.ID, err)
		}
	}
	return ev, nil
}

func deliveryFrom(h map[string]string) store.Delivery {
	return store.Delivery{
		ID:          h["id"],
		EventID:     h["ev"],
		Destination: h["dest"],
		State:       store.DeliveryState(h["st"]),
		Attempts:    atoi(h["n"]),
		CreatedAt:   parseNanos(h["ca"]),
		DueAt:       parseNanos(h["due"]),
		LastStatus:  atoi(h["ls"]),
		LastError:   h["le"],
		UpdatedAt:   parseNanos(h["ua"]),
	}
}

// attemptsFrom decodes a delivery's attempt log: the att list v (LRANGE),
// then last, the newest attempt kept in the delivery hash's "la" ("" before
// the first attempt).
func attemptsFrom(v any, last string) ([]store.Attempt, error) {
	arr, err := array(v)
	if err != nil {
		return nil, err
	}
	out := make([]store.Attempt, 0, len(arr)+1)
	for _, raw := range arr {
		a, err := decodeAttempt(text(raw))
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if last != "" {
		a, err := decodeAttempt(last)
		if err != nil {
			return nil, fmt.Errorf("last %w", err)
		}
		out = append(out, a)
	}
	return out, nil
}

// deliveryIDs lists an event's delivery ids as the scripts' dlvids does:
// its "dlvs", or, when accept left that out because every id is derived,
// "dlv_X_1" to "dlv_X_nd" for event "evt_X".
func deliveryIDs(evh map[string]string) []string {
	if list, ok := evh["dlvs"]; ok && list != "" {
		return strings.Fields(list)
	}
	x, ok := strings.CutPrefix(evh["id"], "evt_")
	n := atoi(evh["nd"])
	if !ok || n <= 0 {
		return nil
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "dlv_" + x + "_" + strconv.Itoa(i+1)
	}
	return ids
}

// implicitDelivery builds the state of a delivery that accept stored no hash
// for (see implicit in lua/prelude.lua): its id is derived from its event's,
// "evt_X" -> "dlv_X_i" with i its place in the route, and until its first
// lease it is pending, with no attempt, created and due when the event was
// stored (the event's "ca"). ok is false when id is not such an id of ev.
func implicitDelivery(evh map[string]string, ev store.Event, id string) (d store.Delivery, ok bool) {
	cut := strings.LastIndexByte(id, '_')
	if cut < 4 || !strings.HasPrefix(id, "dlv_") || !strings.HasPrefix(ev.ID, "evt_") || id[4:cut] != ev.ID[4:] {
		return store.Delivery{}, false
	}
	i, err := strconv.Atoi(id[cut+1:])
	if err != nil || i < 1 || i > len(ev.Destinations) || evh["ca"] == "" {
		return store.Delivery{}, false
	}
	at := parseNanos(evh["ca"])
	return store.Delivery{
		ID:          id,
		EventID:     ev.ID,
		Destination: ev.Destinations[i-1],
		State:       store.StatePending,
		CreatedAt:   at,
		DueAt:       at,
		UpdatedAt:   at,
	}, true
}
