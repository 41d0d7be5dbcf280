package httpapi

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
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
	j, ok := a.jobs.Job(id)
	if !ok {
		writeErrorCode(c, http.StatusNotFound, "not_found", "no such job")
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
	s := startStream(c)

	// running holds the JSON last sent for jobs with work left, so that a
	// progress change (not in the log) is sent, and nothing else twice.
	running := map[string][]byte{}
	var at uint64
	page := func() bool {
		_, at, _ = a.jobs.ChangesSince(math.MaxUint64)
		jobs, next, err := a.jobs.List(q)
		if err != nil {
			return false
		}
		clear(running)
		list := JobList{Jobs: make([]JobView, 0, len(jobs)), NextCursor: next}
		for _, j := range jobs {
			v := a.view(c, j, false)
			list.Jobs = append(list.Jobs, v)
			if !j.State.Terminal() {
				b, _ := json.Marshal(v)
				running[j.ID] = b
			}
		}
		return s.send("jobs", list) == nil
	}
	if !page() {
		return
	}
	send := func(id string) bool {
		j, ok := a.jobs.Summary(id)
		if !ok {
			delete(running, id)
			return s.send("deleted", map[string]string{"id": id}) == nil
		}
		b, err := json.Marshal(a.view(c, j, false))
		if err != nil {
			return false
		}
		if prev, ok := running[id]; ok && bytes.Equal(prev, b) {
			return true
		}
		if j.State.Terminal() {
			delete(running, id)
		} else {
			running[id] = b
		}
		return s.sendRaw("job", b) == nil
	}

	a.watch(c, s, changed, func() bool {
		ids, upTo, ok := a.jobs.ChangesSince(at)
		if !ok {
			return page()
		}
		at = upTo
		seen := map[string]bool{}
		for _, id := range ids {
			seen[id] = true
			if !send(id) {
				return false
			}
		}
		for id := range running {
			if !seen[id] && !send(id) {
				return false
			}
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
