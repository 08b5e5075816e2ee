package agent

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/relaygw/relay/relay/store"
)

// The agent protocol is two JSON-over-HTTPS calls on the relay's ingest
// listener, both POST and both authenticated with HeaderAgent and a bearer
// token. docs/agent.md describes it for people writing their own agent.
const (
	// PathLease long-polls for deliveries: the relay answers as soon as it
	// has some, or empty after the wait.
	PathLease = "/agent/v1/lease"
	// PathReport reports outcomes and keeps held leases alive; it is also the
	// agent's heartbeat.
	PathReport = "/agent/v1/report"
	// PathPrefix is where both are mounted.
	PathPrefix = "/agent/v1/"
	// HeaderAgent carries the agent's name.
	HeaderAgent = "X-Relay-Agent"
)

// Acknowledgements of one reported outcome. Every value except ackRetry
// means the relay is done with the report and the agent drops it.
const (
	ackRetry     = ""           // not recorded (store unavailable): send it again
	ackReleased  = "released"   // given back unattempted, due now
	ackLeaseLost = "lease_lost" // the lease expired or the outcome was already recorded
	ackInvalid   = "invalid"    // unreadable ticket or not this agent's destination
)

// leaseRequest asks for up to Max deliveries, waiting up to WaitMS for some.
// Finished lists tickets whose attempts ended since the last poll, outcome
// not yet reported: they no longer count against the destination's
// concurrency, so the next attempts need not wait for the store to commit
// the last ones.
type leaseRequest struct {
	Max      int      `json:"max"`
	WaitMS   int64    `json:"wait_ms"`
	Finished []string `json:"finished,omitempty"`
}

// leaseResponse hands out deliveries. LeaseMS is how long a lease lasts
// unless the agent extends it; the agent reports at least every HeartbeatMS.
// TLS carries, once per destination among Deliveries, that destination's
// tls settings, when it has any.
type leaseResponse struct {
	Deliveries  []assignment       `json:"deliveries"`
	TLS         map[string]wireTLS `json:"tls,omitempty"`
	LeaseMS     int64              `json:"lease_ms"`
	HeartbeatMS int64              `json:"heartbeat_ms"`
}

// wireTLS is a destination's tls settings: the PEM of its ca_file (added to
// the agent's own roots) and insecure_skip_verify.
type wireTLS struct {
	CAPEM              string `json:"ca_pem,omitempty"`
	InsecureSkipVerify bool   `json:"insecure_skip_verify,omitempty"`
}

// assignment is one delivery for the agent to attempt: everything the
// attempt needs, headers and signature already built by the relay.
type assignment struct {
	// Ticket is opaque to the agent; it goes back with the outcome and in
	// the held list. It holds the lease token: never log it.
	Ticket      string      `json:"ticket"`
	ID          string      `json:"id"`
	Destination string      `json:"destination"`
	Attempt     int         `json:"attempt"`
	URL         string      `json:"url"`
	Host        string      `json:"host,omitempty"`
	Header      http.Header `json:"header"`
	Body        []byte      `json:"body"`
	TimeoutMS   int64       `json:"timeout_ms"`
	// Concurrency bounds the attempts of this destination one agent runs at
	// once; 0 means no bound beyond the agent's own.
	Concurrency int `json:"concurrency,omitempty"`
	// SuccessStatus lists the statuses that count as delivered; empty means
	// any 2xx.
	SuccessStatus []int `json:"success_status,omitempty"`
	// FollowRedirects is the destination's follow_redirects. Absent means
	// false, which is what an agent too old to know the field does: it
	// reports the 3xx, and the relay records a redirect failure.
	FollowRedirects bool `json:"follow_redirects,omitempty"`
}

// reportRequest carries finished attempts and the tickets still held (being
// attempted or waiting for their outcome to be acknowledged), whose leases
// the relay extends. An empty report is a heartbeat.
type reportRequest struct {
	Reports []report `json:"outcomes"`
	Held    []string `json:"held"`
}

// report is what one attempt produced, or a release of a delivery the agent
// did not attempt.
type report struct {
	Ticket  string `json:"ticket"`
	Release bool   `json:"release,omitempty"`
	Status  int    `json:"status,omitempty"`
	// Error is set when no response arrived; Final when no retry can fix it
	// (the agent does not trust the receiver's certificate, say).
	Error      string `json:"error,omitempty"`
	Final      bool   `json:"final,omitempty"`
	RetryAfter string `json:"retry_after,omitempty"`
	Location   string `json:"location,omitempty"`
	// NotFollowed says why a 3xx was not followed although the delivery
	// asked for redirects to be followed.
	NotFollowed string `json:"not_followed,omitempty"`
	Response    string `json:"response,omitempty"`
	DurationNS  int64  `json:"duration_ns"`
}

// reportResponse acknowledges each report (same order) and lists the
// indexes of held tickets whose leases are gone, so the agent stops working
// on them.
type reportResponse struct {
	Acks        []string `json:"acks"`
	Lost        []int    `json:"lost,omitempty"`
	LeaseMS     int64    `json:"lease_ms"`
	HeartbeatMS int64    `json:"heartbeat_ms"`
}

// errorResponse is the body of every refusal.
type errorResponse struct {
	Error string `json:"error"`
}

// holdFactor bounds the deliveries an agent holds, and the relay hands out
// per agent destination, at this many times the concurrency: the attempts
// running and the rest ready to start, so the next attempts never wait for
// a poll's round trip and each poll brings several. (BenchmarkAgent ran
// about a tenth faster, on less CPU, at 4 than at 2.) Those waiting to start
// have their leases extended like the rest; an agent that dies holds them
// until the leases expire.
const holdFactor = 4

// ticket names a lease: the delivery id and the lease token, with the event
// id to find the delivery's record in the store when the relay process
// that answers a report did not hand the lease out. The agent echoes it
// back. The other fields are kept so that tickets of earlier versions stay
// readable; the relay does not believe them (authority.go).
type ticket struct {
	ID          string
	Lease       string
	Destination string
	EventID     string
	Attempts    int
	CreatedAt   int64 // unix nanoseconds
}

// ticketSep separates a ticket's fields: no id, lease token or destination
// name holds it (names match config's pattern, ids and tokens are
// generated). Tickets are decoded for every outcome and heartbeat, so they
// are plain text rather than JSON.
const ticketSep = "\n"

func newTicket(d store.Delivery) ticket {
	return ticket{ID: d.ID, Lease: d.Lease, Destination: d.Destination, EventID: d.EventID,
		Attempts: d.Attempts, CreatedAt: d.CreatedAt.UnixNano()}
}

func (t ticket) encode() string {
	s := strings.Join([]string{t.ID, t.Lease, t.Destination, t.EventID,
		strconv.Itoa(t.Attempts), strconv.FormatInt(t.CreatedAt, 10)}, ticketSep)
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

func decodeTicket(s string) (ticket, error) {
	bad := fmt.Errorf("%w: unreadable", ErrBadTicket)
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return ticket{}, bad
	}
	f := strings.Split(string(b), ticketSep)
	if len(f) != 6 || f[0] == "" || f[1] == "" || f[2] == "" {
		return ticket{}, bad
	}
	t := ticket{ID: f[0], Lease: f[1], Destination: f[2], EventID: f[3]}
	if t.Attempts, err = strconv.Atoi(f[4]); err != nil {
		return ticket{}, bad
	}
	if t.CreatedAt, err = strconv.ParseInt(f[5], 10, 64); err != nil {
		return ticket{}, bad
	}
	return t, nil
}

// delivery rebuilds the leased delivery that the ticket stands for.
func (t ticket) delivery() store.Delivery {
	return store.Delivery{
		ID: t.ID, EventID: t.EventID, Destination: t.Destination, State: store.StatePending,
		Attempts: t.Attempts, CreatedAt: time.Unix(0, t.CreatedAt), Lease: t.Lease,
	}
}

func millis(d time.Duration) int64 { return d.Milliseconds() }

func fromMillis(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }
