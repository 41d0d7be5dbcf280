package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

func newHTTPMetrics(reg *prometheus.Registry) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gosty_http_requests_total",
			Help: "HTTP requests served by the public API, by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gosty_http_request_duration_seconds",
			Help:    "Time to serve HTTP requests of the public API (event streams count their whole life), by route template and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800},
		}, []string{"route", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gosty_http_requests_in_flight",
			Help: "HTTP requests of the public API being served now, event streams included.",
		}),
	}
	var err error
	if m.requests, err = register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.inFlight, err = register(reg, m.inFlight); err != nil {
		return nil, err
	}
	return m, nil
}

// register adds c to reg, reusing an identical collector that is already
// registered (two APIs on one registry share their metrics).
func register[C prometheus.Collector](reg *prometheus.Registry, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("httpapi: registering metrics: %w", err)
	}
	return c, nil
}

func (a *API) metricsHandler() http.Handler {
	return promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{
		ErrorLog:      slogPromLogger{a.log},
		ErrorHandling: promhttp.ContinueOnError,
	})
}

type slogPromLogger struct{ l *slog.Logger }

func (s slogPromLogger) Println(v ...any) { s.l.Error("metrics: " + fmt.Sprint(v...)) }

// methodLabel folds the request method to a fixed set so that label values
// stay bounded.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// quietRoutes are logged at debug level: probes and scrapes are frequent.
var quietRoutes = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// observe logs every request and records the HTTP metrics. It wraps nothing:
// responses (event streams and files above all) go straight to the client.
func (a *API) observe(c *gin.Context) {
	observeRequest(c, a.metrics, a.log, "http request", func(route string, status int) slog.Level {
		switch {
		case status >= 500:
			return slog.LevelWarn
		case quietRoutes[route]:
			return slog.LevelDebug
		case (c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead) && status < 400:
			return slog.LevelDebug // reads are polled by players, UIs and scripts
		}
		return slog.LevelInfo
	})
}

// observeRequest is the request middleware both APIs share: the HTTP
// metrics by route template, and a log line at the level the API picks.
func observeRequest(c *gin.Context, m *httpMetrics, log *slog.Logger, msg string, level func(route string, status int) slog.Level, extra ...slog.Attr) {
	start := time.Now()
	m.inFlight.Inc()
	defer m.inFlight.Dec()

	c.Next()

	elapsed := time.Since(start)
	route := routeOf(c)
	method := methodLabel(c.Request.Method)
	status := c.Writer.Status()
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route, method).Observe(elapsed.Seconds())

	lv := level(route, status)
	ctx := c.Request.Context()
	if !log.Enabled(ctx, lv) {
		return
	}
	attrs := append([]slog.Attr{
		slog.String("method", c.Request.Method),
		slog.String("route", route),
		slog.String("path", c.Request.URL.Path),
		slog.Int("status", status),
		slog.Duration("duration", elapsed),
		slog.Int("bytes", max(c.Writer.Size(), 0)),
		slog.String("remote", c.ClientIP()),
	}, extra...)
	log.LogAttrs(ctx, lv, msg, attrs...)
}

// recovery turns a panic in a handler into a logged 500 with the JSON error
// shape (when nothing was written yet). http.ErrAbortHandler is re-raised so
// the server aborts the response as intended.
func (a *API) recovery(c *gin.Context) { recoverRequest(c, a.log, "panic serving request") }

// recoverRequest is the panic guard both APIs share.
func recoverRequest(c *gin.Context, log *slog.Logger, msg string) {
	defer func() {
		rec := recover()
		if rec == nil {
			return
		}
		if rec == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
			panic(rec)
		}
		log.Error(msg, "method", c.Request.Method, "route", routeOf(c),
			"panic", fmt.Sprint(rec), "stack", string(debug.Stack()))
		if c.Writer.Written() {
			c.Abort()
			panic(http.ErrAbortHandler) // the response is broken; cut the connection
		}
		writeErrorCode(c, http.StatusInternalServerError, "internal", "internal error")
	}()
	c.Next()
}
