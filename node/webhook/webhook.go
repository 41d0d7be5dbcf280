// Package webhook delivers a finished job's callback (its callback_url
// option) while this node leads, and holds the rules every callback
// follows: the URL a job may name (CheckURL: the --webhook-allow list,
// package egress), the only HTTP client that leaves the cluster for it
// (dials only what the list admits, checked at dial time; no redirects,
// no proxy), and the signature receivers check (Sign, with the key
// DeriveKey makes from the cluster key unless --webhook-key-file gives
// one). Delivery state lives in the job log (job.notify after every
// attempt), so a new leader carries on where the old one stopped.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/cluster/peerlink"
	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/internal/tick"
	"github.com/gosty/gosty/node/egress"
)

// Webhook headers. The signature covers the timestamp and the body:
// hex(HMAC-SHA256(key, timestamp + "." + body)).
const (
	HeaderSignature = "Gosty-Signature" // "sha256=<hex>"
	HeaderTimestamp = "Gosty-Timestamp" // unix seconds
	HeaderDelivery  = "Gosty-Delivery"  // the job ID
)

// DeriveKey is the webhook signing key used when no
// --webhook-key-file is given: the cluster key's HKDF key of the webhook
// purpose (peerlink.DeriveKey). It changed with the peer link release
// (it was an HMAC of a label before): receivers that check signatures
// need the new key, or a --webhook-key-file.
func DeriveKey(clusterKey string) []byte {
	return peerlink.DeriveKey(clusterKey, peerlink.Webhook)
}

// Sign returns the Gosty-Signature value for a delivery.
func Sign(key []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// CheckURL validates a job's callback_url at submit (the shared rule:
// package egress).
func CheckURL(ctx context.Context, a *egress.AllowList, raw string) error {
	if a.Empty() {
		return errors.New("options: callback_url: webhooks are off on this cluster (no --webhook-allow)")
	}
	_, err := a.CheckURL(ctx, "options: callback_url", raw)
	return err
}

// webhookClient is the only client that makes requests outside the
// cluster. It dials only addresses the allow list admits, checked on the
// resolved IP at dial time (a name that later resolves elsewhere, DNS
// rebinding, is refused unless the name itself is listed), follows no
// redirects and uses no proxy.
func webhookClient(a *egress.AllowList, timeout time.Duration) *http.Client {
	dial := a.DialContext(&net.Dialer{Timeout: timeout})
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dial,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			MaxIdleConns:          16,
			IdleConnTimeout:       30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Proposer commits commands to the job log (on the leader, wherever it
// is).
type Proposer interface {
	Propose(ctx context.Context, op cluster.Op, body any) error
}

// Notifier delivers the callbacks of finished jobs while this node leads.
// Delivery state lives in the job log (job.notify after every attempt), so
// a new leader carries on where the old one stopped: at least once, and a
// duplicate only when a leader dies between a 2xx and its commit.
type Notifier struct {
	store *cluster.Store
	// log records attempts; through the forwarder, so that a 2xx seen by a
	// leader that has just lost leadership still reaches the new one.
	log    Proposer
	key    []byte
	client *http.Client
	logger *slog.Logger

	interval    time.Duration // how often due deliveries are looked for
	backoff     time.Duration // after the first failure, doubling...
	maxBackoff  time.Duration // ...up to this
	maxAttempts int
	maxAge      time.Duration // since the job finished

	mu       sync.Mutex
	inflight map[string]bool
}

// New is a notifier that records attempts through log, reaches only what
// allow admits and signs with key.
func New(store *cluster.Store, log Proposer, allow *egress.AllowList, key []byte, logger *slog.Logger) *Notifier {
	return &Notifier{
		store: store, log: log, key: key, client: webhookClient(allow, 10*time.Second),
		logger:   logger.With("component", "webhook"),
		interval: 500 * time.Millisecond, backoff: time.Second, maxBackoff: time.Minute,
		maxAttempts: 12, maxAge: 24 * time.Hour, inflight: map[string]bool{},
	}
}

// due is how long after the last attempt the next one may start.
func (w *Notifier) due(attempts int) time.Duration {
	return tick.Backoff(attempts, w.backoff, w.maxBackoff)
}

// Run delivers while this node leads.
func (w *Notifier) Run(ctx context.Context) {
	// A new leader first applies everything committed before it, so that
	// a delivery the old leader recorded is not made again.
	leader := cluster.CaughtUp{Store: w.store}
	tick.Every(ctx, w.interval, func() {
		if leader.Ready(ctx) {
			w.round(ctx)
		}
	})
}

func (w *Notifier) round(ctx context.Context) {
	now := time.Now()
	var jobs []cluster.Job
	w.store.FSM().Read(func(st *cluster.State) {
		st.PendingWebhooks(func(j *cluster.Job) bool {
			h := j.Webhook
			if !h.LastAttemptAt.IsZero() && now.Sub(h.LastAttemptAt) < w.due(h.Attempts) {
				return true
			}
			jobs = append(jobs, *j)
			return true
		})
	})
	for _, j := range jobs {
		w.mu.Lock()
		busy := w.inflight[j.ID]
		w.inflight[j.ID] = true
		w.mu.Unlock()
		if busy {
			continue
		}
		go func() {
			defer func() {
				w.mu.Lock()
				delete(w.inflight, j.ID)
				w.mu.Unlock()
			}()
			w.deliver(ctx, j, now)
		}()
	}
}

func (w *Notifier) deliver(ctx context.Context, j cluster.Job, now time.Time) {
	attempt := j.Webhook.Attempts + 1
	err := w.post(ctx, j, now)
	rec := cluster.JobNotify{JobID: j.ID, Attempt: attempt, Delivered: err == nil}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		rec.Error = err.Error()
		if len(rec.Error) > 500 {
			rec.Error = rec.Error[:500]
		}
		rec.GiveUp = attempt >= w.maxAttempts || now.Sub(j.FinishedAt) > w.maxAge
	}
	if perr := w.log.Propose(ctx, cluster.OpJobNotify, rec); perr != nil {
		w.logger.Warn("recording a webhook attempt failed", "job", j.ID, "attempt", attempt, "err", perr)
		return
	}
	switch {
	case rec.Delivered:
		w.logger.Info("webhook delivered", "job", j.ID, "attempt", attempt)
	case rec.GiveUp:
		w.logger.Warn("webhook given up", "job", j.ID, "attempts", attempt, "err", err)
	default:
		w.logger.Info("webhook attempt failed; will retry", "job", j.ID, "attempt", attempt,
			"retry_in", w.due(attempt), "err", err)
	}
}

// post sends one delivery; nil means the receiver answered 2xx.
func (w *Notifier) post(ctx context.Context, j cluster.Job, now time.Time) error {
	progress := 0.0
	if j.State == cluster.JobDone {
		progress = 1
	}
	body, err := json.Marshal(httpapi.NewJobView(j, progress))
	if err != nil {
		return err
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.CallbackURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gosty-webhook/1")
	req.Header.Set(HeaderDelivery, j.ID)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(w.key, ts, body))
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}
