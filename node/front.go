package node

import (
	"net/http"
	"sync/atomic"
)

// frontHandler is the public port's handler. From the moment the port is
// open it answers /healthz (a node restoring a long job log is alive, not
// ready) and says "starting" to everything else; Run sets the API in its
// place.
type frontHandler struct{ h atomic.Pointer[http.Handler] }

func newFrontHandler() *frontHandler {
	f := &frontHandler{}
	f.set(http.HandlerFunc(starting))
	return f
}

func (f *frontHandler) set(h http.Handler) { f.h.Store(&h) }

func (f *frontHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*f.h.Load()).ServeHTTP(w, r)
}

// starting answers while the node opens its job log.
func starting(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Path == "/healthz" {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"status":"starting"}` + "\n"))
		return
	}
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(`{"error":{"code":"starting","message":"the node is starting: it is opening its job log"}}` + "\n"))
}
