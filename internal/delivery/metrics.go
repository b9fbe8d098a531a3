package delivery

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mxward/internal/spool"
)

// Metrics are the delivery counters exported on the admin listener. Label values come
// from small fixed sets (results, policy sources, TLS levels, reason codes), never from
// domains or addresses, so the series count stays bounded.
type Metrics struct {
	Deliveries *prometheus.CounterVec // result, policy, tls
	ConnErrors *prometheus.CounterVec // reason
	DNSErrors  *prometheus.CounterVec // reason
}

// NewMetrics registers the delivery metrics, plus queue size and age read from qs at
// scrape time.
func NewMetrics(reg prometheus.Registerer, qs QueueStatser) *Metrics {
	m := &Metrics{
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxward_deliveries_total",
			Help: "Delivery attempts per recipient, by result (delivered, deferred, bounced), policy source and TLS level (none, untrusted, trusted for half-DANE, verified).",
		}, []string{"result", "policy", "tls"}),
		ConnErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxward_connection_errors_total",
			Help: "Outbound connection and session failures, by reason.",
		}, []string{"reason"}),
		DNSErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxward_dns_errors_total",
			Help: "DNS failures while routing outbound mail, by reason.",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.Deliveries, m.ConnErrors, m.DNSErrors)
	if qs != nil {
		reg.MustRegister(&queueCollector{qs: qs})
	}
	return m
}

// QueueStatser is the part of the spool the queue metrics need.
type QueueStatser interface {
	QueueStats(ctx context.Context) (spool.QueueStats, error)
}

var (
	queueSizeDesc = prometheus.NewDesc("mxward_queue_messages", "Messages in the queue with at least one recipient not yet delivered or bounced.", nil, nil)
	queueAgeDesc  = prometheus.NewDesc("mxward_queue_oldest_age_seconds", "Age of the oldest queued message; 0 when the queue is empty.", nil, nil)
)

// queueCollector reads the queue size at scrape time, at most every few seconds, so a
// scraper cannot turn a large queue into a steady load on the index.
type queueCollector struct {
	qs   QueueStatser
	mu   sync.Mutex
	last time.Time
	st   spool.QueueStats
	err  error
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueSizeDesc
	ch <- queueAgeDesc
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	if time.Since(c.last) > 5*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c.st, c.err = c.qs.QueueStats(ctx)
		cancel()
		c.last = time.Now()
	}
	st, err := c.st, c.err
	c.mu.Unlock()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(queueSizeDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(queueSizeDesc, prometheus.GaugeValue, float64(st.Messages))
	age := 0.0
	if !st.Oldest.IsZero() {
		age = time.Since(st.Oldest).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(queueAgeDesc, prometheus.GaugeValue, age)
}
