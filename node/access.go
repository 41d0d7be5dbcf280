package node

import (
	"net/http"
)

// metricsMux serves /metrics alone on --metrics-addr; anything else is
// 404 in the API's JSON error shape.
func metricsMux(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":{"code":"not_found","message":"this address serves GET /metrics only"}}` + "\n"))
	})
	return mux
}

// accessSummary says, as slog attributes, what the public API opens to
// whom: logged once at start so that an operator sees what is open.
func accessSummary(cfg Config, tokens bool, metricsAddr string) []any {
	writes, reads := "open to anyone", "open to anyone"
	if tokens {
		writes, reads = "API token", "API token"
		if cfg.PublicRead {
			reads = "open to anyone (--public-read)"
		}
	}
	files := reads
	if cfg.Playback == PlaybackSigned {
		files = "signed URL or API token"
	}
	metrics := "on the public address"
	if cfg.MetricsAddr != "" {
		metrics = metricsAddr
	}
	return []any{"writes", writes, "reads", reads, "files", files,
		"open", "/healthz, /readyz, the UI's page and assets", "metrics", metrics}
}
