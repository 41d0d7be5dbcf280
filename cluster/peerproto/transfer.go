package peerproto

import (
	"errors"
	"fmt"
	"io"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons for moving blob bytes between nodes: the bounded label values of
// gosty_transfer_bytes_total{reason}, sent in HeaderReason.
const (
	ReasonTask      = "task"      // a worker pulls the inputs of its task
	ReasonReplicate = "replicate" // pushing or pulling to reach --replicas copies
	ReasonServe     = "serve"     // proxying a blob to an HTTP client
	ReasonUpload    = "upload"    // relaying a resumable upload to the node that holds it
	ReasonOther     = "other"
)

// TransferReason folds any reason string to the bounded label set.
func TransferReason(r string) string {
	switch r {
	case ReasonTask, ReasonReplicate, ReasonServe, ReasonUpload:
		return r
	}
	return ReasonOther
}

// Transfer directions (label values of gosty_transfer_bytes_total{direction}).
const (
	DirectionIn  = "in"
	DirectionOut = "out"
)

// TransferBytes returns gosty_transfer_bytes_total{direction,reason} as
// registered on reg, registering it on first use; the server and the client
// side of one node share it. A nil reg gives an unregistered vector. It
// panics if reg holds an incompatible collector of the same name (a
// programming error, like prometheus.MustRegister).
func TransferBytes(reg prometheus.Registerer) *prometheus.CounterVec {
	c, err := RegisterTransferBytes(reg)
	if err != nil {
		panic(err.Error())
	}
	return c
}

// RegisterTransferBytes is TransferBytes with an error instead of the
// panic.
func RegisterTransferBytes(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gosty_transfer_bytes_total",
		Help: "Blob and upload bytes moved between nodes over the internal API, by direction (in, out) and reason (task, replicate, serve, upload, other).",
	}, []string{"direction", "reason"})
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing, nil
			}
		}
		return nil, fmt.Errorf("peerproto: registering gosty_transfer_bytes_total: %w", err)
	}
	return c, nil
}

// CountingReader adds the bytes read from R to C (a transfer counter of
// one direction and reason).
type CountingReader struct {
	R io.Reader
	C prometheus.Counter
}

func (c CountingReader) Read(p []byte) (int, error) {
	n, err := c.R.Read(p)
	if n > 0 {
		c.C.Add(float64(n))
	}
	return n, err
}
