package admin

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/relaygw/relay/relay/state"
	"github.com/relaygw/relay/relay/store"
)

// IngestOutcomes are the outcome label values of relay_ingest_requests_total;
// each is exported at zero from the start, so rates work before the first
// request of a kind.
var IngestOutcomes = []string{"accepted", "duplicate", "parked", "rejected", "unmatched", "too_large", "error",
	"unauthorized", "busy", "rate_limited"}

// DeliveryOutcomes are the outcome label values of relay_deliveries_total.
var DeliveryOutcomes = []string{"success", "retry", "dead"}

// CircuitValues maps a breaker state to the value of relay_circuit_state.
var CircuitValues = map[string]float64{"closed": 0, "half-open": 1, "open": 2}

// DepthReader reads the store's cheap queue counters.
type DepthReader interface {
	Depths(ctx context.Context) (store.Depths, error)
}

// MetricsOptions are the sources of the metrics read at scrape time.
type MetricsOptions struct {
	// Depths gives relay_queue_depth, relay_dlq_depth and the parked count.
	Depths DepthReader
	// Destinations gives in-flight attempts and breaker states.
	Destinations func() []state.Destination
	// Version is exported as relay_build_info{version}.
	Version string
	Logger  *slog.Logger
}

// Metrics is one relay's Prometheus registry. Each Server has its own, so
// several relays can run in one process (tests) without sharing counters.
type Metrics struct {
	reg              *prometheus.Registry
	ingestRequests   *prometheus.CounterVec
	ingestDuration   *prometheus.HistogramVec
	deliveries       *prometheus.CounterVec
	deliveryDuration *prometheus.HistogramVec
	reloads          *prometheus.CounterVec
	reloadOK         prometheus.Gauge
	reloadTime       prometheus.Gauge
	parkedExpired    prometheus.Counter
	yielded          *prometheus.CounterVec
}

// NewMetrics builds the registry with the relay's metrics, the Go runtime
// and process collectors, and a collector reading o's sources per scrape.
func NewMetrics(o MetricsOptions) *Metrics {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		ingestRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_ingest_requests_total",
			Help: "Callbacks received on the ingest listener, by outcome.",
		}, []string{"outcome"}),
		ingestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "relay_ingest_duration_seconds",
			Help:    "Time from a callback's arrival to its answer (includes the durable write), by outcome.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"outcome"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_deliveries_total",
			Help: "Delivery attempts by destination and outcome: success, retry (failed, retried later) or dead (failed, dead-lettered).",
		}, []string{"destination", "outcome"}),
		deliveryDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "relay_delivery_duration_seconds",
			Help:    "Duration of delivery attempts (request to response) by destination.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"destination"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_config_reloads_total",
			Help: "Config reloads (SIGHUP or POST /api/reload) by result: success or failure.",
		}, []string{"result"}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relay_config_last_reload_successful",
			Help: "1 if the last config reload applied, 0 if it was refused.",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relay_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last config load that applied (the start counts).",
		}),
		parkedExpired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_parked_expired_total",
			Help: "Parked events deleted unreplayed after ingest.parked_ttl.",
		}),
		yielded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_delivery_yield_seconds_total",
			Help: "Time a destination's workers held their next lease so that callbacks waiting for the store write came first.",
		}, []string{"destination"}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "relay_build_info",
		Help:        "Always 1; the version label says which relay runs.",
		ConstLabels: prometheus.Labels{"version": o.Version},
	})
	build.Set(1)
	for _, out := range IngestOutcomes {
		m.ingestRequests.WithLabelValues(out)
	}
	for _, res := range []string{"success", "failure"} {
		m.reloads.WithLabelValues(res)
	}
	m.reloadOK.Set(1)
	m.reloadTime.SetToCurrentTime()
	m.reg.MustRegister(m.ingestRequests, m.ingestDuration, m.deliveries, m.deliveryDuration,
		m.reloads, m.reloadOK, m.reloadTime, m.parkedExpired, m.yielded, build,
		&stateCollector{o: o},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the registry the metrics live in, for tests and for other
// packages that want to add their own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Ingest counts one ingest request; it has the signature of
// ingest.Handler.OnOutcome.
func (m *Metrics) Ingest(outcome string, took time.Duration) {
	m.ingestRequests.WithLabelValues(outcome).Inc()
	m.ingestDuration.WithLabelValues(outcome).Observe(took.Seconds())
}

// Delivery counts one delivery attempt of dest.
func (m *Metrics) Delivery(dest, outcome string, took time.Duration) {
	m.deliveries.WithLabelValues(dest, outcome).Inc()
	m.deliveryDuration.WithLabelValues(dest).Observe(took.Seconds())
}

// KnowDestinations exports dest's delivery counters at zero, so a
// destination shows in relay_deliveries_total and
// relay_delivery_yield_seconds_total before its first attempt.
func (m *Metrics) KnowDestinations(dests []string) {
	for _, d := range dests {
		for _, out := range DeliveryOutcomes {
			m.deliveries.WithLabelValues(d, out)
		}
		m.yielded.WithLabelValues(d)
	}
}

// Yielded counts time dest's workers waited for ingest (deliver's
// Options.OnYield).
func (m *Metrics) Yielded(dest string, waited time.Duration) {
	m.yielded.WithLabelValues(dest).Add(waited.Seconds())
}

// ParkedExpired counts n parked events deleted after ingest.parked_ttl.
func (m *Metrics) ParkedExpired(n int) { m.parkedExpired.Add(float64(n)) }

// Reloaded records a config reload's result.
func (m *Metrics) Reloaded(ok bool) {
	if !ok {
		m.reloads.WithLabelValues("failure").Inc()
		m.reloadOK.Set(0)
		return
	}
	m.reloads.WithLabelValues("success").Inc()
	m.reloadOK.Set(1)
	m.reloadTime.SetToCurrentTime()
}

// stateCollector reads queue depths and destination states at scrape time.
// Depths come from counters the store keeps with every write, so a scrape
// never scans a queue.
type stateCollector struct{ o MetricsOptions }

var (
	descQueue = prometheus.NewDesc("relay_queue_depth",
		"Deliveries waiting (due, scheduled for a retry, or in flight), by destination.", []string{"destination"}, nil)
	descDLQ = prometheus.NewDesc("relay_dlq_depth",
		"Deliveries in the dead-letter queue, all destinations.", nil, nil)
	descDLQDest = prometheus.NewDesc("relay_dlq_destination_depth",
		"Deliveries in the dead-letter queue, by destination.", []string{"destination"}, nil)
	descParked = prometheus.NewDesc("relay_parked_events",
		"Events that matched no route and wait for a replay.", nil, nil)
	descInFlight = prometheus.NewDesc("relay_delivery_in_flight",
		"Delivery attempts running now, by destination.", []string{"destination"}, nil)
	descCircuit = prometheus.NewDesc("relay_circuit_state",
		"Circuit breaker state by destination: 0 closed, 1 half-open, 2 open.", []string{"destination"}, nil)
	descStoreUp = prometheus.NewDesc("relay_store_up",
		"1 if the store answered the depth query of this scrape and can write (its last write succeeded, or a probe write did), else 0.", nil, nil)
	descWriteErrors = prometheus.NewDesc("relay_store_write_errors_total",
		"Writes the store refused (disk full, Redis down or refusing writes), counted per waiting caller.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueue, descDLQ, descDLQDest, descParked, descInFlight, descCircuit, descStoreUp, descWriteErrors} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	var states []state.Destination
	if c.o.Destinations != nil {
		states = c.o.Destinations()
	}
	for _, s := range states {
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(s.InFlight), s.Name)
		if v, ok := CircuitValues[s.Circuit]; ok {
			ch <- prometheus.MustNewConstMetric(descCircuit, prometheus.GaugeValue, v, s.Name)
		}
	}
	if c.o.Depths == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	wc, checks := c.o.Depths.(writeChecker)
	if checks {
		ch <- prometheus.MustNewConstMetric(descWriteErrors, prometheus.CounterValue, float64(wc.WriteErrors()))
	}
	d, err := c.o.Depths.Depths(ctx)
	if err != nil {
		c.o.Logger.Warn("admin: metrics: store depths", "err", err)
		ch <- prometheus.MustNewConstMetric(descStoreUp, prometheus.GaugeValue, 0)
		return
	}
	up := 1.0
	if checks && wc.CheckWrite(ctx) != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(descStoreUp, prometheus.GaugeValue, up)
	// Every configured destination shows, at zero when nothing waits, and
	// so does a removed one that still has deliveries queued.
	queued := map[string]int{}
	dead := map[string]int{}
	for _, s := range states {
		queued[s.Name], dead[s.Name] = 0, 0
	}
	for k, v := range d.Queued {
		queued[k] = v
	}
	total := 0
	for k, v := range d.Dead {
		dead[k] = v
		total += v
	}
	for k, v := range queued {
		ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(v), k)
	}
	for k, v := range dead {
		ch <- prometheus.MustNewConstMetric(descDLQDest, prometheus.GaugeValue, float64(v), k)
	}
	ch <- prometheus.MustNewConstMetric(descDLQ, prometheus.GaugeValue, float64(total))
	ch <- prometheus.MustNewConstMetric(descParked, prometheus.GaugeValue, float64(d.Parked))
}

// ingestCounts reads relay_ingest_requests_total by outcome.
func (m *Metrics) ingestCounts() map[string]float64 {
	out := map[string]float64{}
	m.counts(m.ingestRequests, func(labels map[string]string, v float64) {
		out[labels["outcome"]] += v
	})
	return out
}

// deliveryCounts sums relay_deliveries_total by outcome over the
// destinations allow accepts.
func (m *Metrics) deliveryCounts(allow func(dest string) bool) map[string]float64 {
	out := map[string]float64{}
	for _, o := range DeliveryOutcomes {
		out[o] = 0
	}
	m.counts(m.deliveries, func(labels map[string]string, v float64) {
		if allow(labels["destination"]) {
			out[labels["outcome"]] += v
		}
	})
	return out
}

// counts calls fn with each series of c.
func (m *Metrics) counts(c prometheus.Collector, fn func(labels map[string]string, v float64)) {
	ch := make(chan prometheus.Metric, 64)
	go func() {
		c.Collect(ch)
		close(ch)
	}()
	for pm := range ch {
		var d dto.Metric
		if pm.Write(&d) != nil || d.Counter == nil {
			continue
		}
		labels := map[string]string{}
		for _, l := range d.Label {
			labels[l.GetName()] = l.GetValue()
		}
		fn(labels, d.Counter.GetValue())
	}
}
