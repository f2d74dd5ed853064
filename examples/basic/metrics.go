package main

// Logs and metrics.
//
// The metrics are Prometheus', with its client library,
// github.com/prometheus/client_golang. It is what Go services most often
// expose metrics with (Kubernetes, etcd and CoreDNS use it),
// its text format is what Prometheus and the OpenTelemetry Collector alike
// scrape, and it takes a few lines. An
// OpenTelemetry meter would be fed by the same vippslogin.Metrics functions,
// at the cost of an SDK and an exporter to set up.
//
// This example is a module of its own (see its go.mod) so that
// vippslogin's module does not require client_golang: a site that imports
// vippslogin gets no metrics library it did not choose.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vippslogin/vippslogin"
)

// loginMetrics are the site's counters and histogram of logins, which
// vippslogin feeds through the functions of metrics.
type loginMetrics struct {
	started  prometheus.Counter
	finished prometheus.Counter
	failed   *prometheus.CounterVec   // by kind
	calls    *prometheus.HistogramVec // by endpoint and outcome
}

// newLoginMetrics registers the login metrics with reg.
func newLoginMetrics(reg prometheus.Registerer) *loginMetrics {
	m := &loginMetrics{
		started: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vippslogin_logins_started_total",
			Help: "Logins sent to Vipps MobilePay.",
		}),
		finished: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vippslogin_logins_finished_total",
			Help: "Logins that logged a browser in.",
		}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vippslogin_logins_failed_total",
			Help: "Logins that failed or were refused at their start, by kind of failure.",
		}, []string{"kind"}),
		calls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vippslogin_provider_call_duration_seconds",
			Help:    "Calls to the login provider, by endpoint and outcome (ok or error).",
			Buckets: prometheus.DefBuckets, // 5 ms to 10 s; HTTPTimeout is 10 s
		}, []string{"endpoint", "outcome"}),
	}
	reg.MustRegister(m.started, m.finished, m.failed, m.calls)
	return m
}

// metrics returns the functions for vippslogin.Config.Metrics. They only
// touch counters, which is as fast and as safe for concurrent use as
// vippslogin asks.
func (m *loginMetrics) metrics() vippslogin.Metrics {
	return vippslogin.Metrics{
		LoginStarted:  func(context.Context) { m.started.Inc() },
		LoginFinished: func(context.Context) { m.finished.Inc() },
		LoginFailed:   func(_ context.Context, kind string) { m.failed.WithLabelValues(kind).Inc() },
		ProviderCall: func(_ context.Context, endpoint string, d time.Duration, err error) {
			outcome := "ok"
			if err != nil {
				outcome = "error"
			}
			m.calls.WithLabelValues(endpoint, outcome).Observe(d.Seconds())
		},
	}
}

// newRegistry returns a registry with the Go runtime's and the process's
// metrics. The site keeps its own registry rather than Prometheus' global
// one, so that several sites (in tests) do not collide.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// metricsHandler serves reg's metrics in Prometheus' format. A deployed
// site serves it on an address only the scraper reaches, or guards it.
func metricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// requestIDKey is the context key of the request's id.
type requestIDKey struct{}

// withRequestID gives every request an id, its X-Request-Id if a proxy in
// front set one, in its context and in the answer's X-Request-Id. vippslogin
// writes its records with the request's context, so logHandler adds the id
// to them, and a site's other logs of the request carry the same id.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 {
			b := make([]byte, 8)
			_, _ = rand.Read(b)
			id = hex.EncodeToString(b)
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

// logHandler adds the request_id of a record's context to the record, as a
// tracing bridge would add trace and span ids.
type logHandler struct{ slog.Handler }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{h.Handler.WithAttrs(attrs)}
}

func (h logHandler) WithGroup(name string) slog.Handler {
	return logHandler{h.Handler.WithGroup(name)}
}
