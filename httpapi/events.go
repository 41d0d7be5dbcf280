package httpapi

import (
	"encoding/json"
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
	ctx := c.Request.Context()
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

	_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Time{})
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // tell nginx-style proxies not to buffer
	c.Status(http.StatusOK)

	s := &eventStream{c: c}
	last := a.view(c, j)
	if s.send("job", last) != nil || last.State.Terminal() {
		return
	}

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
		j, ok := a.jobs.Job(id)
		if !ok {
			_ = s.send("deleted", map[string]string{"id": id})
			return
		}
		v := a.view(c, j)
		if v.State == last.State && v.Progress == last.Progress {
			continue
		}
		last = v
		if s.send("job", v) != nil || v.State.Terminal() {
			return
		}
	}
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
	s.next++
	buf := make([]byte, 0, len(data)+64)
	buf = append(buf, "id: "...)
	buf = strconv.AppendInt(buf, int64(s.next), 10)
	buf = append(buf, "\nevent: "...)
	buf = append(buf, event...)
	buf = append(buf, "\ndata: "...)
	buf = append(buf, data...) // compact JSON holds no newline
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
