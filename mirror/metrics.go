package mirror

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
)

// metrics are the mirror's Prometheus series, on a registry of its own.
// Labels are bounded: link names from the configuration, states, events
// and cases from the transition table; never a DN, a cookie or an error.
type metrics struct {
	reg         *prometheus.Registry
	state       *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	detection   *prometheus.HistogramVec
	changes     *prometheus.CounterVec
	reconnects  *prometheus.CounterVec
	refreshed   *prometheus.GaugeVec
	provider    *prometheus.GaugeVec
}

func newMetrics(mi *Mirror) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "replink", Subsystem: "link", Name: "state",
			Help: "1 for the state each link is in, 0 for the others.",
		}, []string{"link", "state"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "replink", Subsystem: "link", Name: "transitions_total",
			Help: "Transitions of each link, by event and by case of the design mail.",
		}, []string{"link", "event", "case"}),
		detection: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "replink", Name: "detection_seconds",
			Help:    "How long the provider had been silent when a loss was detected (0 when it said so itself).",
			Buckets: []float64{0.001, 0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120},
		}, []string{"link", "event"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "replink", Name: "changes_applied_total",
			Help: "Changes applied to each link's copy.",
		}, []string{"link"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "replink", Subsystem: "link", Name: "reconnects_total",
			Help: "Connection attempts after a loss or a failure.",
		}, []string{"link"}),
		refreshed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "replink", Subsystem: "refresh", Name: "changes",
			Help: "Changes received in the link's current or last refresh: its progress.",
		}, []string{"link"}),
	}
	m.provider = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "replink", Subsystem: "link", Name: "provider",
		Help: "1 for the provider URL each link is on or trying, 0 for its others.",
	}, []string{"link", "url"})
	m.reg.MustRegister(m.state, m.transitions, m.detection, m.changes, m.reconnects, m.refreshed, m.provider,
		&linkCollector{m: mi}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// init creates a new link's series at zero, so dashboards see them before
// anything happens.
func (m *metrics) init(link string) {
	m.setState(link, replink.Stopped)
	m.changes.WithLabelValues(link)
	m.reconnects.WithLabelValues(link)
	m.refreshed.WithLabelValues(link)
}

// setState sets link's state gauges: 1 for s, 0 for the others.
func (m *metrics) setState(link string, s replink.State) {
	for _, o := range replink.States {
		v := 0.0
		if o == s {
			v = 1
		}
		m.state.WithLabelValues(link, o.String()).Set(v)
	}
}

// observe records one transition.
func (m *metrics) observe(tr fsm.Transition) {
	m.setState(tr.Link, tr.To)
	m.transitions.WithLabelValues(tr.Link, tr.Event.String(), tr.Case.String()).Inc()
	if tr.To == replink.Refreshing && tr.From != replink.Refreshing {
		m.refreshed.WithLabelValues(tr.Link).Set(0)
	}
	switch tr.Event {
	case replink.KeepaliveMiss, replink.InactivityTimeout, replink.ConnectionClosed, replink.DisconnectNotice:
		silent := 0.0
		var se *fsm.SilenceError
		if errors.As(tr.Cause, &se) {
			silent = se.Silent.Seconds()
		}
		m.detection.WithLabelValues(tr.Link, tr.Event.String()).Observe(silent)
	case replink.RetryTimer:
		m.reconnects.WithLabelValues(tr.Link).Inc()
	}
}

// onProvider marks url as the link's provider among urls.
func (m *metrics) onProvider(link, url string, urls []string) {
	for _, u := range urls {
		v := 0.0
		if u == url {
			v = 1
		}
		m.provider.WithLabelValues(link, u).Set(v)
	}
}

// forget drops the series of a link that was removed.
func (m *metrics) forget(link string) {
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{m.state, m.transitions, m.detection, m.changes, m.reconnects, m.refreshed, m.provider} {
		v.DeletePartialMatch(prometheus.Labels{"link": link})
	}
}

// linkCollector reports what is read from the links at scrape time.
type linkCollector struct{ m *Mirror }

var (
	descEntries   = prometheus.NewDesc("replink_entries", "Entries held in each link's committed copy.", []string{"link"}, nil)
	descCookieAge = prometheus.NewDesc("replink_cookie_age_seconds", "Time since each link's cookie was last committed.", []string{"link"}, nil)
	descReceived  = prometheus.NewDesc("replink_received_bytes_total", "Bytes received from each link's provider, for every protocol: what delta-syncrepl saves shows here.", []string{"link"}, nil)
	descFallbacks = prometheus.NewDesc("replink_log_fallbacks_total", "Times a delta-syncrepl link gave up on the log for a refresh, by cause.", []string{"link", "cause"}, nil)
	descHeld      = prometheus.NewDesc("replink_deletions_held", "Deletions the deletion guard holds for each link until an admin approves them (0: none).", []string{"link"}, nil)
)

func (c *linkCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descEntries
	ch <- descCookieAge
	ch <- descHeld
	ch <- descReceived
	ch <- descFallbacks
}

func (c *linkCollector) Collect(ch chan<- prometheus.Metric) {
	for _, l := range c.m.snapshot() {
		name := l.link.Name()
		if n, err := l.h.Len(); err == nil {
			ch <- prometheus.MustNewConstMetric(descEntries, prometheus.GaugeValue, float64(n), name)
		}
		if age := l.h.CookieAge(); age >= 0 {
			ch <- prometheus.MustNewConstMetric(descCookieAge, prometheus.GaugeValue, age.Seconds(), name)
		}
		held := 0.0
		if h := l.link.HeldDeletions(); h != nil {
			held = float64(h.Deletions)
		}
		ch <- prometheus.MustNewConstMetric(descReceived, prometheus.CounterValue, float64(l.link.ReceivedBytes()), name)
		for cause, n := range l.link.Fallbacks() {
			ch <- prometheus.MustNewConstMetric(descFallbacks, prometheus.CounterValue, float64(n), name, string(cause))
		}
		ch <- prometheus.MustNewConstMetric(descHeld, prometheus.GaugeValue, held, name)
	}
}
