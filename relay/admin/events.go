package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/relaygw/relay/relay/store"
)

// Page sizes of the list routes.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// findBudget bounds how long one GET /api/events keeps searching for a full
// page; past it, the page goes out short with a cursor to continue from.
const findBudget = 3 * time.Second

// getEvent answers GET /api/events/{id}: the event, its route, its body and
// every delivery with its attempts.
func (h *Handler) getEvent(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	rec, err := h.opts.Store.Event(r.Context(), id)
	if err != nil {
		h.storeError(w, "event "+id, err)
		return
	}
	rec, ok := scoped(scopeOf(r), rec)
	if !ok {
		// The answer a missing id gets: a portal learns nothing of other
		// clients' events, not even that the id exists.
		h.storeError(w, "event "+id, store.ErrNotFound)
		return
	}
	v := eventView(rec)
	if h.opts.Sent != nil {
		for i := range v.Deliveries {
			if s, ok := h.opts.Sent(r.Context(), rec.Event, v.Deliveries[i].Destination); ok {
				v.Deliveries[i].Sent = sentView(s)
			}
		}
	}
	writeJSON(w, http.StatusOK, v)
}

// scoped is rec as scope sees it: only the deliveries to its destinations,
// and the route limited to them. ok is false when none of rec's deliveries
// is in scope (parked events included): the portal may not see the event.
func scoped(scope *Scope, rec store.EventRecord) (store.EventRecord, bool) {
	if scope == nil {
		return rec, true
	}
	out := rec
	out.Deliveries = nil
	for _, d := range rec.Deliveries {
		if scope.Allows(d.Destination) {
			out.Deliveries = append(out.Deliveries, d)
		}
	}
	out.Event.Destinations = slices.DeleteFunc(slices.Clone(rec.Event.Destinations), func(d string) bool { return !scope.Allows(d) })
	return out, len(out.Deliveries) > 0
}

// findEvents answers GET /api/events?webhook_id=&mid=&status=&since=&until=&limit=&cursor=,
// newest first. It calls the store until the page is full, the store has
// nothing more, or findBudget is spent.
func (h *Handler) findEvents(w http.ResponseWriter, r *http.Request) {
	q, err := eventQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	p, err := pageParams(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// A portal's status is that of its own deliveries, so the store is
	// not asked to match it.
	scope, sq := scopeOf(r), q
	if scope != nil {
		sq.Status = ""
	}
	items := []EventSummary{}
	deadline := time.Now().Add(findBudget)
	for {
		recs, next, err := h.opts.Store.FindEvents(r.Context(), sq, store.Page{Cursor: p.Cursor, Limit: p.Limit - len(items)})
		if err != nil {
			h.storeError(w, "find events", err)
			return
		}
		for _, rec := range recs {
			rec, ok := scoped(scope, rec)
			if ok && (q.Status == "" || rec.Status() == q.Status) {
				items = append(items, eventSummary(rec))
			}
		}
		p.Cursor = next
		if next == "" || len(items) >= p.Limit || time.Now().After(deadline) {
			break
		}
	}
	writePage(w, r, items, p.Cursor)
}

// eventQuery reads the search parameters. mid matches the event's dedupe
// key, which is the mid under the default dedupe fields; dedupe_key is
// accepted as well for other dedupe setups.
func eventQuery(v url.Values) (store.EventQuery, error) {
	q := store.EventQuery{WebhookID: v.Get("webhook_id"), DedupeKey: v.Get("mid")}
	if dk := v.Get("dedupe_key"); dk != "" {
		q.DedupeKey = dk
	}
	if s := v.Get("status"); s != "" {
		q.Status = store.EventStatus(s)
		if !slices.Contains(store.EventStatuses, q.Status) {
			return q, fmt.Errorf("bad status %q: want one of %v", s, store.EventStatuses)
		}
	}
	if s := v.Get("since"); s != "" {
		since, err := parseSince(s, time.Now())
		if err != nil {
			return q, err
		}
		q.Since = since
	}
	if s := v.Get("until"); s != "" {
		until, err := parseSince(s, time.Now())
		if err != nil {
			return q, fmt.Errorf("bad until: %w", err)
		}
		q.Until = until
	}
	return q, nil
}

// parseSince reads an RFC 3339 time or a Go duration meaning "that long
// ago" (since=1h).
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("bad since %q: want an RFC 3339 time (2024-05-01T10:00:00Z) or a duration ago (90m, 24h)", s)
}

// pageParams reads limit and cursor.
func pageParams(r *http.Request) (store.Page, error) {
	p := store.Page{Cursor: r.URL.Query().Get("cursor"), Limit: DefaultLimit}
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return p, fmt.Errorf("bad limit %q: want 1 to %d", s, MaxLimit)
		}
		p.Limit = n
	}
	return p, nil
}

// writePage answers a list as a JSON array. The cursor of the next page, if
// any, goes in the X-Next-Cursor header and a Link rel="next" header.
func writePage[T any](w http.ResponseWriter, r *http.Request, items []T, next string) {
	if items == nil {
		items = []T{}
	}
	if next != "" {
		v := r.URL.Query()
		v.Set("cursor", next)
		u := url.URL{Path: r.URL.Path, RawQuery: v.Encode()}
		w.Header().Set("X-Next-Cursor", next)
		w.Header().Set("Link", "<"+u.String()+`>; rel="next"`)
	}
	writeJSON(w, http.StatusOK, items)
}
