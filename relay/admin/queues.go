package admin

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/relaygw/relay/relay/store"
)

// bulkPage is the page size bulk replays read the store with.
const bulkPage = 500

// listDLQ answers GET /api/dlq?destination=&limit=&cursor=, oldest dead
// first.
func (h *Handler) listDLQ(w http.ResponseWriter, r *http.Request) {
	p, err := pageParams(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	dest, scope := r.URL.Query().Get("destination"), scopeOf(r)
	if dest != "" && !scope.Allows(dest) {
		forbidden(w, scope)
		return
	}
	if dest == "" && scope != nil && len(scope.Destinations) == 1 {
		dest = scope.Destinations[0]
	}
	// A portal of several destinations reads the whole DLQ and keeps its
	// own, page after page, like findEvents.
	items := []DeliveryView{}
	deadline := time.Now().Add(findBudget)
	for {
		ds, next, err := h.opts.Store.ListDLQ(r.Context(), dest, store.Page{Cursor: p.Cursor, Limit: p.Limit - len(items)})
		if err != nil {
			h.storeError(w, "list dlq", err)
			return
		}
		for _, d := range ds {
			if scope.Allows(d.Destination) {
				items = append(items, deliveryView(d))
			}
		}
		p.Cursor = next
		if next == "" || len(items) >= p.Limit || time.Now().After(deadline) {
			break
		}
	}
	writePage(w, r, items, p.Cursor)
}

// replayDLQ answers POST /api/dlq/{id}/replay. The store moves a delivery
// out of the DLQ only once, so a second replay answers 404 and never queues
// it twice.
func (h *Handler) replayDLQ(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	// Read first: a portal may replay only its own destinations, and the
	// destination's open circuit takes the replay as its probe.
	d, err := h.opts.Store.Delivery(r.Context(), id)
	if err != nil {
		h.storeError(w, "delivery "+id+" in the dlq", err)
		return
	}
	if scope := scopeOf(r); scope != nil && !scope.Allows(d.Destination) {
		// As for a missing id (see getEvent).
		h.storeError(w, "delivery "+id+" in the dlq", store.ErrNotFound)
		return
	}
	if err := h.opts.Store.ReplayDLQ(r.Context(), id); err != nil {
		h.storeError(w, "delivery "+id+" in the dlq", err)
		return
	}
	h.log.Info("admin: dlq delivery replayed", "delivery", id)
	h.replayed(d.Destination)
	writeJSON(w, http.StatusOK, map[string]string{"status": "replayed", "id": id})
}

// deleteDLQ answers DELETE /api/dlq/{id}: the delivery leaves the DLQ for
// good and shows as discarded on its event.
func (h *Handler) deleteDLQ(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	if err := h.opts.Store.DeleteDLQ(r.Context(), id); err != nil {
		h.storeError(w, "delivery "+id+" in the dlq", err)
		return
	}
	h.log.Info("admin: dlq delivery deleted", "delivery", id)
	writeJSON(w, http.StatusOK, map[string]string{"status": "deleted", "id": id})
}

// replayDLQAll answers POST /api/dlq/replay?destination= (every destination
// when none is named). It lists first and replays after, so deliveries that
// die again during the replay are not replayed a second time.
func (h *Handler) replayDLQAll(w http.ResponseWriter, r *http.Request) {
	dest, scope := r.URL.Query().Get("destination"), scopeOf(r)
	dests := []string{dest}
	switch {
	case dest != "" && !scope.Allows(dest):
		forbidden(w, scope)
		return
	case dest == "" && scope != nil:
		dests = scope.Destinations
	}
	var ids []string
	for _, dest := range dests {
		p := store.Page{Limit: bulkPage}
		for {
			ds, next, err := h.opts.Store.ListDLQ(r.Context(), dest, p)
			if err != nil {
				h.storeError(w, "list dlq", err)
				return
			}
			for _, d := range ds {
				ids = append(ids, d.ID)
			}
			if next == "" {
				break
			}
			p.Cursor = next
		}
	}
	var res ReplayResult
	for _, id := range ids {
		switch err := h.opts.Store.ReplayDLQ(r.Context(), id); {
		case err == nil:
			res.Replayed++
		case errors.Is(err, store.ErrNotFound):
			res.Skipped++
		default:
			res.Failed = append(res.Failed, ReplayFailed{ID: id, Error: err.Error()})
		}
	}
	h.log.Info("admin: dlq replayed", "destination", dest, "replayed", res.Replayed,
		"skipped", res.Skipped, "failed", len(res.Failed))
	if dest != "" || scope != nil {
		h.replayed(dests...)
	} else {
		h.replayed() // every destination
	}
	writeJSON(w, http.StatusOK, res)
}

// listParked answers GET /api/parked?limit=&cursor=, oldest first, with
// bodies.
func (h *Handler) listParked(w http.ResponseWriter, r *http.Request) {
	p, err := pageParams(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	evs, next, err := h.opts.Store.ListParked(r.Context(), p)
	if err != nil {
		h.storeError(w, "list parked", err)
		return
	}
	items := make([]ParkedView, 0, len(evs))
	for _, ev := range evs {
		items = append(items, parkedView(ev))
	}
	writePage(w, r, items, next)
}

// replayParkedAll answers POST /api/parked/replay[?webhook_id=]: every parked
// event is routed again under the running config; those that still match no
// route stay parked.
func (h *Handler) replayParkedAll(w http.ResponseWriter, r *http.Request) {
	if h.opts.Route == nil {
		notConfigured(w, "parked replay")
		return
	}
	only := r.URL.Query().Get("webhook_id")
	var res ReplayResult
	p := store.Page{Limit: bulkPage}
	for {
		evs, next, err := h.opts.Store.ListParked(r.Context(), p)
		if err != nil {
			h.storeError(w, "list parked", err)
			return
		}
		for _, ev := range evs {
			if only == "" || ev.WebhookID == only {
				h.routeParked(r.Context(), ev, &res)
			}
		}
		if next == "" {
			break
		}
		p.Cursor = next
	}
	h.log.Info("admin: parked events replayed", "webhook_id", only, "routed", res.Replayed,
		"deliveries", res.Deliveries, "still_parked", res.StillParked, "failed", len(res.Failed))
	writeJSON(w, http.StatusOK, res)
}

// replayParked answers POST /api/parked/{id}/replay.
func (h *Handler) replayParked(w http.ResponseWriter, r *http.Request) {
	if h.opts.Route == nil {
		notConfigured(w, "parked replay")
		return
	}
	id := mux.Vars(r)["id"]
	rec, err := h.opts.Store.Event(r.Context(), id)
	if err != nil {
		h.storeError(w, "event "+id, err)
		return
	}
	if !rec.Event.Parked {
		writeError(w, http.StatusNotFound, "event "+id+" is not parked")
		return
	}
	var res ReplayResult
	h.routeParked(r.Context(), rec.Event, &res)
	if len(res.Failed) > 0 && res.Skipped == 0 {
		writeJSON(w, http.StatusInternalServerError, res)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// routeParked routes one parked event under the running config and counts
// the result in res.
func (h *Handler) routeParked(ctx context.Context, ev store.Event, res *ReplayResult) {
	dests := h.opts.Route(ev)
	if len(dests) == 0 {
		res.StillParked++
		return
	}
	n, err := h.opts.Store.ReplayParked(ctx, ev.ID, dests)
	switch {
	case errors.Is(err, store.ErrNotFound):
		res.Skipped++
		return
	case err != nil:
		res.Failed = append(res.Failed, ReplayFailed{ID: ev.ID, Error: err.Error()})
		return
	}
	res.Replayed++
	res.Deliveries += n
	h.wake(dests...)
}

// replayed reports an operator's DLQ replay of dests (all when none).
func (h *Handler) replayed(dests ...string) {
	if h.opts.Replayed == nil {
		h.wake(dests...)
		return
	}
	h.opts.Replayed(dests...)
}

// wake tells the workers of dests, or of every destination when none is
// named, that deliveries are due now.
func (h *Handler) wake(dests ...string) {
	if h.opts.Wake != nil {
		h.opts.Wake(dests...)
	}
}
