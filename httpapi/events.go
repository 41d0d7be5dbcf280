package httpapi

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/gosty/gosty/cluster"
)

// events streams a job's state and progress as server-sent events. See the
// package documentation for the protocol. Everything runs in the handler's
// goroutine, so nothing outlives the request.
func (a *API) events(c *gin.Context) {
	id, ok := jobID(c)
	if !ok {
		return
	}
	changed := a.jobs.Changed() // before the first read, so no change is missed
	j, ok := a.job(c, id)
	if !ok {
		return
	}
	if j.State.Terminal() && c.GetHeader("Last-Event-ID") != "" {
		// An EventSource reconnecting after the final event: 204 tells it
		// to stop.
		c.Status(http.StatusNoContent)
		c.Writer.WriteHeaderNow()
		return
	}

	s := startStream(c)
	last := a.view(c, j, true)
	if s.send("job", last) != nil || last.State.Terminal() {
		return
	}

	a.watch(c, s, changed, func() bool {
		j, ok := a.jobs.Job(id)
		if !ok {
			_ = s.send("deleted", map[string]string{"id": id})
			return false
		}
		v := a.view(c, j, true)
		if v.State == last.State && v.Progress == last.Progress {
			return true
		}
		last = v
		return s.send("job", v) == nil && !v.State.Terminal()
	})
}

// listEvents streams the job list as server-sent events (GET
// /api/v1/events[?limit=N]): "jobs" with the first page (as GET
// /api/v1/jobs answers it), then "job" with the view of each job that is new or changed, and
// "deleted" with {"id"} for each job that is gone. Only the jobs the log
// says changed are looked at (and, for progress, which is not in the log,
// the running ones this stream has sent), so a stream costs what changes,
// not the history; a stream that falls too far behind the log gets a
// fresh "jobs".
func (a *API) listEvents(c *gin.Context) {
	ctx := c.Request.Context()
	q, ok := listQuery(c) // ?limit= sizes the first page
	if !ok {
		return
	}
	q.Cursor, q.State = "", ""
	changed := a.jobs.Changed() // before the first read, so no change is missed
	ls := &listStream{a: a, c: c, s: startStream(c), q: q, running: map[string][]byte{}}
	if !ls.page() {
		return
	}
	a.watch(c, ls.s, changed, func() bool {
		if !ls.sweep() {
			return false
		}
		// A burst of changes (every task of a big job) costs one sweep per
		// gap, not one per log entry.
		select {
		case <-ctx.Done():
			return false
		case <-time.After(a.listGap):
			return true
		}
	})
}

// listStream is one listEvents stream. It lives in the handler's goroutine
// and goes with the request.
type listStream struct {
	a *API
	c *gin.Context
	s *eventStream
	q cluster.ListQuery

	// running holds the JSON last sent for jobs with work left, so that a
	// progress change (not in the log) is sent, and nothing else twice.
	// page empties it; a job leaves it when it ends or is deleted.
	running map[string][]byte
	at      uint64 // the log index the stream has looked at
}

// page sends "jobs" with the first page and starts over from it.
func (ls *listStream) page() bool {
	_, ls.at, _ = ls.a.jobs.ChangesSince(math.MaxUint64)
	jobs, next, err := ls.a.jobs.List(ls.q)
	if err != nil {
		return false
	}
	clear(ls.running)
	list := JobList{Jobs: make([]JobView, 0, len(jobs)), NextCursor: next}
	for _, j := range jobs {
		v := ls.a.view(ls.c, j, false)
		list.Jobs = append(list.Jobs, v)
		if !j.State.Terminal() {
			b, _ := json.Marshal(v)
			ls.running[j.ID] = b
		}
	}
	return ls.s.send("jobs", list) == nil
}

// sweep sends what changed in the log since the last sweep, and the
// progress of the running jobs; a stream too far behind the log gets a
// fresh page.
func (ls *listStream) sweep() bool {
	ids, upTo, ok := ls.a.jobs.ChangesSince(ls.at)
	if !ok {
		return ls.page()
	}
	ls.at = upTo
	seen := map[string]bool{}
	for _, id := range ids {
		seen[id] = true
		if !ls.send(id) {
			return false
		}
	}
	for id := range ls.running {
		if !seen[id] && !ls.send(id) {
			return false
		}
	}
	return true
}

// send sends job id's view if it differs from what was sent, or "deleted".
func (ls *listStream) send(id string) bool {
	j, ok := ls.a.jobs.Summary(id)
	if !ok {
		delete(ls.running, id)
		return ls.s.send("deleted", map[string]string{"id": id}) == nil
	}
	b, err := json.Marshal(ls.a.view(ls.c, j, false))
	if err != nil {
		return false
	}
	if prev, ok := ls.running[id]; ok && bytes.Equal(prev, b) {
		return true
	}
	if j.State.Terminal() {
		delete(ls.running, id)
	} else {
		ls.running[id] = b
	}
	return ls.s.sendRaw("job", b) == nil
}

// watch calls step whenever the job log changes or the poll interval
// passes (progress reported by heartbeats is not in the log), keeping the
// stream alive with pings, until step returns false or the client goes.
// changed must have been taken before the stream's first read.
func (a *API) watch(c *gin.Context, s *eventStream, changed <-chan struct{}, step func() bool) {
	ctx := c.Request.Context()
	ping := time.NewTicker(a.pingInterval)
	defer ping.Stop()
	poll := time.NewTicker(a.pollInterval)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ping.C:
			if s.comment("ping") != nil {
				return
			}
			continue
		case <-changed:
			changed = a.jobs.Changed()
		case <-poll.C:
		}
		if !step() {
			return
		}
	}
}

// startStream answers 200 with the event-stream headers.
func startStream(c *gin.Context) *eventStream {
	// Streams outlive any server-wide write timeout.
	_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Time{})
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // tell nginx-style proxies not to buffer
	c.Status(http.StatusOK)
	return &eventStream{c: c}
}

type eventStream struct {
	c    *gin.Context
	next int
}

func (s *eventStream) send(event string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.sendRaw(event, data)
}

// sendRaw sends data, compact JSON (which holds no newline), as one event.
func (s *eventStream) sendRaw(event string, data []byte) error {
	s.next++
	buf := make([]byte, 0, len(data)+64)
	buf = append(buf, "id: "...)
	buf = strconv.AppendInt(buf, int64(s.next), 10)
	buf = append(buf, "\nevent: "...)
	buf = append(buf, event...)
	buf = append(buf, "\ndata: "...)
	buf = append(buf, data...)
	buf = append(buf, "\n\n"...)
	return s.write(buf)
}

func (s *eventStream) comment(text string) error {
	return s.write([]byte(": " + text + "\n\n"))
}

func (s *eventStream) write(b []byte) error {
	if _, err := s.c.Writer.Write(b); err != nil {
		return err
	}
	s.c.Writer.Flush()
	return nil
}
