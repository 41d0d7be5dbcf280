package main

// `gosty jobs`, `gosty job` and `gosty members`: what the API answers, as
// tables (or its JSON with --output json).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"

	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/node/disk"
)

// listFlags are `gosty jobs`' paging choices.
type listFlags struct {
	limit int
	state string
	all   bool
}

// jobs lists jobs, newest first: one page, or with --all every page (the
// cursors list each job once even while jobs are added).
func (c *client) jobs(ctx context.Context, lf listFlags) error {
	var out httpapi.JobList
	q := url.Values{}
	if lf.limit > 0 {
		q.Set("limit", strconv.Itoa(lf.limit))
	}
	if lf.state != "" {
		q.Set("state", lf.state)
	}
	for {
		var page httpapi.JobList
		if err := c.do(ctx, http.MethodGet, "/api/v1/jobs?"+q.Encode(), nil, "", &page); err != nil {
			return &exitError{exitRequest, err}
		}
		out.Jobs = append(out.Jobs, page.Jobs...)
		out.NextCursor = page.NextCursor
		if !lf.all || page.NextCursor == "" {
			break
		}
		q.Set("cursor", page.NextCursor)
	}
	return c.print(out, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSTATE\tPROGRESS\tERROR")
		for _, j := range out.Jobs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%3.0f%%\t%s\n", j.ID, j.Name, j.State, 100*j.Progress, j.Error)
		}
		tw.Flush()
		if out.NextCursor != "" {
			fmt.Fprintf(w, "(more: --all, or the next page from cursor %s)\n", out.NextCursor)
		}
	})
}

// job shows one job, or cancels it (a finished job is deleted).
func (c *client) job(ctx context.Context, id string, cancel bool) error {
	method := http.MethodGet
	if cancel {
		method = http.MethodDelete
	}
	var raw json.RawMessage
	if err := c.do(ctx, method, "/api/v1/jobs/"+url.PathEscape(id), nil, "", &raw); err != nil {
		return &exitError{exitRequest, err}
	}
	if c.output == "json" || len(raw) == 0 {
		return c.printJSON(raw)
	}
	var j httpapi.JobView
	if err := json.Unmarshal(raw, &j); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "id\t%s\nname\t%s\nstate\t%s\nprogress\t%.0f%%\n", j.ID, j.Name, j.State, 100*j.Progress)
	if j.Error != "" {
		fmt.Fprintf(tw, "error\t%s\n", j.Error)
	}
	encoded, retried := 0, 0
	for _, ch := range j.Chunks {
		if ch.EncodedBy != "" {
			encoded++
		}
		if ch.Attempts > 1 {
			retried++
		}
	}
	fmt.Fprintf(tw, "chunks\t%d encoded of %d (%d retried)\n", encoded, len(j.Chunks), retried)
	for _, r := range j.Renditions {
		fmt.Fprintf(tw, "rendition\t%s %dx%d %d kb/s\n", r.Name, r.Width, r.Height, r.Bitrate/1000)
	}
	if j.Outputs != nil && j.Outputs.HLS != "" {
		fmt.Fprintf(tw, "hls\t%s%s\ndash\t%s%s\n", c.server, j.Outputs.HLS, c.server, j.Outputs.DASH)
		if j.Outputs.Poster != "" { // "previews": the storyboard, in a label no wider than "rendition"
			fmt.Fprintf(tw, "poster\t%s%s\npreviews\t%s%s\n", c.server, j.Outputs.Poster, c.server, j.Outputs.Storyboard)
		}
	} else if j.Live != nil && j.Live.Ready {
		fmt.Fprintf(tw, "live hls\t%s%s (%d chunks, %.1f s so far)\n", c.server, j.Live.HLS, j.Live.Segments, j.Live.Seconds)
	}
	return tw.Flush()
}

// quorumLine is the quorum line of `gosty members`.
func quorumLine(q httpapi.QuorumStatus) string {
	s := fmt.Sprintf("voters: %d of %d healthy, quorum %d", q.HealthyVoters, q.Voters, q.Needed)
	if q.HealthyVoters < q.Needed {
		return s + ": quorum lost"
	}
	return s + fmt.Sprintf(", failure tolerance %d", q.FailureTolerance)
}

// diskColumn is the DISK column of `gosty members`: the room for media
// (free above the reserves), "full" below them, "-" from nodes that do not
// say.
func diskColumn(m httpapi.MemberStatus) string {
	switch d := m.Disk; {
	case d == nil:
		return "-"
	case d.Full:
		return "full (" + disk.FormatSize(d.FreeBytes) + " free)"
	default:
		return disk.FormatSize(max(d.FreeBytes-d.ReserveBytes, 0)) + " room"
	}
}

func (c *client) members(ctx context.Context) error {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/api/v1/cluster", nil, "", &raw); err != nil {
		return &exitError{exitRequest, err}
	}
	if c.output == "json" {
		return c.printJSON(raw)
	}
	var s httpapi.ClusterStatus
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	leader := s.Leader
	if leader == "" {
		leader = "none"
	}
	line := "leader: " + leader
	if s.Quorum.Voters > 0 { // nodes that predate it do not say
		line += "; " + quorumLine(s.Quorum)
	}
	fmt.Fprintln(c.stdout, line)
	for _, w := range s.Insecure {
		fmt.Fprintf(c.stdout, "INSECURE (%s runs with --insecure): %s\n", s.Node, w)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tRAFT\tVOTER\tTASKS\tDISK\tHTTP")
	for _, m := range s.Members {
		state := m.State
		if m.Leaving {
			state += " (leaving)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%d/%d\t%s\t%s\n", m.Name, state, m.RaftRole, m.Voter, m.TasksActive, m.Slots, diskColumn(m), m.HTTP)
	}
	return tw.Flush()
}
