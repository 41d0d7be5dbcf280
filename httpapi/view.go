package httpapi

import (
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/gosty/gosty/cluster"
)

// JobView is the public JSON shape of a job.
type JobView struct {
	ID       string           `json:"id"`
	Name     string           `json:"name"`
	State    cluster.JobState `json:"state"`
	Progress float64          `json:"progress"`
	Error    string           `json:"error,omitempty"`
	// SourceURL is where a URL-ingested source came from, without its
	// query or user info (they may carry credentials).
	SourceURL string `json:"source_url,omitempty"`
	// Warnings say what of the source the outputs leave out (image-based
	// subtitles, tracks beyond the cap).
	Warnings   []string           `json:"warnings,omitempty"`
	Options    cluster.JobOptions `json:"options"`
	Source     cluster.Probe      `json:"source"`
	Renditions []RenditionView    `json:"renditions"`
	// Chunks are a job's chunks: live while it runs, and for a done job as
	// its manifest recorded them. Pages of the job list leave them out
	// (ChunkCount says how many there are).
	Chunks     []ChunkView  `json:"chunks,omitempty"`
	ChunkCount int          `json:"chunk_count"`
	Outputs    *OutputsView `json:"outputs,omitempty"`
	// Live is the play-while-encoding HLS view (see live.go); absent for
	// failed and canceled jobs.
	Live *LiveView `json:"live,omitempty"`
	// Bytes sums what the job stored, for people and for transfer
	// accounting (bytes moved against the ideal).
	Bytes      BytesView `json:"bytes"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// CallbackURL and Webhook: the job's callback and where its delivery
	// stands (pending, delivered or failed, attempts, last error).
	CallbackURL string                 `json:"callback_url,omitempty"`
	Webhook     *cluster.WebhookStatus `json:"webhook,omitempty"`
	// Publish is where uploading the job's files to object storage stands
	// (absent when it publishes nowhere); outputs.published has the URLs.
	Publish *cluster.PublishStatus `json:"publish,omitempty"`
	// TTL is how long the media are kept after the job finishes (absent:
	// forever); ExpiresAt when that is; once it has passed, ExpiredAt and
	// FreedBytes say when the media went and how many bytes that released.
	TTL        string    `json:"ttl,omitempty"`
	KeepSource bool      `json:"keep_source"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	ExpiredAt  time.Time `json:"expired_at,omitzero"`
	FreedBytes int64     `json:"freed_bytes,omitempty"`
	// Priority is the scheduling class; Submitter who sent the job, for
	// fair sharing ("token:<hash of the API token>", "client:<client_id>",
	// absent when anonymous).
	Priority  cluster.Priority `json:"priority"`
	Submitter string           `json:"submitter,omitempty"`
}

// RenditionView is one rendition of a job and, once the job is done, how
// close it came to the source (absent for jobs packaged before the report
// existed, or when it could not be measured).
type RenditionView struct {
	cluster.Rendition
	Quality *cluster.Quality `json:"quality,omitempty"`
}

// ChunkView is one chunk of a job and the node that encoded it.
type ChunkView struct {
	Index     int     `json:"index"`
	Start     float64 `json:"start"`
	Duration  float64 `json:"duration"`
	Frames    int     `json:"frames"`
	EncodedBy string  `json:"encoded_by,omitempty"`
	RunningOn string  `json:"running_on,omitempty"` // node encoding it now
	Attempts  int     `json:"attempts"`
	Bytes     int64   `json:"bytes"`         // the chunk's source
	Encoded   int64   `json:"encoded_bytes"` // all its renditions
}

// BytesView sizes a job's media.
type BytesView struct {
	Source    int64 `json:"source"`
	Chunks    int64 `json:"chunks"`  // split pieces of the source
	Encoded   int64 `json:"encoded"` // encoded chunks, every rendition
	Audio     int64 `json:"audio"`
	Published int64 `json:"published"` // published files (HLS, DASH, MP4)
}

// OutputsView holds the URLs of a job's published media. Each field is
// present only when the job has that output.
type OutputsView struct {
	// Subtitles are the sidecar WebVTT files, one per track (subtitles.go).
	Subtitles []SubtitleView `json:"subtitles,omitempty"`

	HLS  string            `json:"hls,omitempty"`
	DASH string            `json:"dash,omitempty"`
	MP4  map[string]string `json:"mp4,omitempty"` // rendition name → URL
	// Poster is a JPEG of the video; Storyboard is a WebVTT thumbnails
	// track whose cues name regions of sprite sheets (#xywh=).
	Poster     string `json:"poster,omitempty"`
	Storyboard string `json:"storyboard,omitempty"`
	// Published are the addresses of the job's files in the bucket it was
	// published to, once it is (never signed: the bucket decides who reads).
	Published *PublishedView `json:"published,omitempty"`
}

// PublishedView is a published job's folder in its bucket and its main
// files there.
type PublishedView struct {
	BaseURL string            `json:"base_url"`
	HLS     string            `json:"hls,omitempty"`
	DASH    string            `json:"dash,omitempty"`
	MP4     map[string]string `json:"mp4,omitempty"`
}

// publishedView is nil unless the job's files are in its bucket.
func publishedView(j cluster.Job) *PublishedView {
	p := j.Publish
	if p == nil || p.State != cluster.PublishPublished || p.BaseURL == "" {
		return nil
	}
	at := func(rel string) string {
		if rel == "" {
			return ""
		}
		parts := strings.Split(rel, "/")
		for i, s := range parts {
			parts[i] = url.PathEscape(s)
		}
		return strings.TrimSuffix(p.BaseURL, "/") + "/" + strings.Join(parts, "/")
	}
	v := &PublishedView{BaseURL: p.BaseURL, HLS: at(j.HLS), DASH: at(j.DASH)}
	for name, rel := range j.MP4 {
		if rel == "" {
			continue
		}
		if v.MP4 == nil {
			v.MP4 = map[string]string{}
		}
		v.MP4[name] = at(rel)
	}
	return v
}

// LiveView says whether and how far a job can be played while it is still
// encoding.
type LiveView struct {
	HLS      string  `json:"hls"`      // live master playlist; redirects to the final one once done
	Ready    bool    `json:"ready"`    // playback can start
	Segments int     `json:"segments"` // chunks playable now (the contiguous encoded prefix)
	Seconds  float64 `json:"seconds"`  // their duration
	Complete bool    `json:"complete"` // every chunk is encoded
}

// JobList is the body of GET /api/v1/jobs: a page of jobs, newest first,
// and the cursor of the next page (absent on the last).
type JobList struct {
	Jobs       []JobView `json:"jobs"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

// FileURL is the URL path at which a job's published file rel is served.
func FileURL(jobID, rel string) string {
	parts := strings.Split(rel, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "/api/v1/jobs/" + url.PathEscape(jobID) + "/files/" + strings.Join(parts, "/")
}

// NewJobView builds the public view of j with the given progress. A
// running job's copy carries its chunks; a compact done job's chunks come
// from its manifest (ChunkViews). Its length is the job JSON's field list,
// mapped one by one from the record.
func NewJobView(j cluster.Job, progress float64) JobView {
	v := JobView{
		ID:         j.ID,
		Name:       j.Name,
		State:      j.State,
		Progress:   clamp01(progress),
		Error:      j.Error,
		SourceURL:  cluster.RedactURL(j.SourceURL),
		Warnings:   j.Warnings,
		Options:    j.Options,
		Source:     j.Source,
		Renditions: make([]RenditionView, len(j.Renditions)),
		ChunkCount: max(j.ChunkCount, len(j.Chunks)),
		CreatedAt:  j.CreatedAt,
		UpdatedAt:  j.UpdatedAt,
		FinishedAt: j.FinishedAt,

		CallbackURL: j.CallbackURL,
		Webhook:     j.Webhook,
		Publish:     j.Publish,
		KeepSource:  !j.DropSource,
		ExpiresAt:   j.ExpiresAt(),
		ExpiredAt:   j.ExpiredAt,
		FreedBytes:  j.FreedBytes,
		Priority:    j.Priority,
		Submitter:   j.Submitter,
	}
	if v.Priority == "" {
		v.Priority = cluster.PriorityNormal
	}
	if j.TTL > 0 {
		v.TTL = j.TTL.String()
	}
	for i, r := range j.Renditions {
		v.Renditions[i] = RenditionView{Rendition: r}
		if len(j.Quality) == len(j.Renditions) {
			q := j.Quality[i]
			v.Renditions[i].Quality = &q
		}
	}
	if j.State == cluster.JobDone {
		v.Progress = 1
	}
	v.Bytes = BytesView{Source: j.SourceBlob.Size, Audio: j.Audio.Size}
	if sz := j.Sizes; sz != nil {
		v.Bytes.Chunks, v.Bytes.Encoded, v.Bytes.Published = sz.ChunkSize, sz.Encoded, sz.Published
	}
	if len(j.Chunks) > 0 {
		v.Chunks = make([]ChunkView, len(j.Chunks))
		v.Bytes.Chunks, v.Bytes.Encoded = 0, 0
	}
	for i, c := range j.Chunks {
		var enc int64
		for _, o := range c.Outputs {
			enc += o.Size
		}
		v.Chunks[i] = ChunkView{
			Index:     c.Index,
			Start:     c.Start,
			Duration:  c.Duration,
			Frames:    c.Frames,
			EncodedBy: c.EncodedBy,
			RunningOn: c.RunningOn,
			Attempts:  c.Attempts,
			Bytes:     c.Source.Size,
			Encoded:   enc,
		}
		v.Bytes.Chunks += c.Source.Size
		v.Bytes.Encoded += enc
	}
	if j.Outputs != nil {
		v.Bytes.Published = 0
	}
	for _, b := range j.Outputs {
		v.Bytes.Published += b.Size
	}
	var out OutputsView
	if j.HLS != "" {
		out.HLS = FileURL(j.ID, j.HLS)
		out.Subtitles = subtitleViews(j)
	}
	if j.DASH != "" {
		out.DASH = FileURL(j.ID, j.DASH)
	}
	for name, rel := range j.MP4 {
		if rel == "" {
			continue
		}
		if out.MP4 == nil {
			out.MP4 = make(map[string]string, len(j.MP4))
		}
		out.MP4[name] = FileURL(j.ID, rel)
	}
	if j.Poster != "" {
		out.Poster = FileURL(j.ID, j.Poster)
	}
	if j.Storyboard != "" {
		out.Storyboard = FileURL(j.ID, j.Storyboard)
	}
	if out.HLS != "" || out.DASH != "" || out.MP4 != nil {
		out.Published = publishedView(j)
		v.Outputs = &out
	}
	if j.State != cluster.JobFailed && j.State != cluster.JobCanceled {
		st := LiveStatusOf(j)
		v.Live = &LiveView{HLS: FileURL(j.ID, liveDir+"master.m3u8"), Ready: st.Ready,
			Segments: st.Segments, Seconds: math.Round(st.Seconds*1000) / 1000, Complete: st.Complete}
	}
	return v
}

// ChunkViews are the chunks a done job's manifest recorded.
func ChunkViews(cs []cluster.ChunkSummary) []ChunkView {
	out := make([]ChunkView, len(cs))
	for i, c := range cs {
		out[i] = ChunkView{Index: c.Index, Start: c.Start, Duration: c.Duration, Frames: c.Frames,
			EncodedBy: c.EncodedBy, Attempts: c.Attempts, Bytes: c.Bytes, Encoded: c.Encoded}
	}
	return out
}

func clamp01(f float64) float64 {
	switch {
	case math.IsNaN(f) || f < 0:
		return 0
	case f > 1:
		return 1
	}
	return f
}

// view is the job as this caller sees it: with signed playback, the output
// URLs carry a fresh signature for callers that are authorized (they hold
// an API token, or none is configured); others get them bare. A done job's
// chunks come from its manifest when detail is asked for (one job, not a
// page of the list).
func (a *API) view(c *gin.Context, j cluster.Job, detail bool) JobView {
	v := NewJobView(j, a.jobs.Progress(j.ID))
	if detail && j.Compact() && !j.Manifest.IsZero() {
		if m, err := a.jobs.Manifest(c.Request.Context(), j); err == nil {
			v.Chunks = ChunkViews(m.Chunks)
		} else {
			a.log.Debug("job view without its manifest", "job", j.ID, "err", err)
		}
	}
	if !detail {
		v.Chunks = nil
	}
	if a.live == nil {
		v.Live = nil
	}
	if a.playback != nil && a.authorized(c) {
		q := a.playback.query(j.ID)
		if v.Outputs != nil {
			v.Outputs.sign(q)
		}
		if v.Live != nil {
			v.Live.HLS += "?" + q
		}
	}
	return v
}

// sign appends the playback query q to every URL.
func (o *OutputsView) sign(q string) {
	for i := range o.Subtitles {
		o.Subtitles[i].URL += "?" + q
	}
	if o.HLS != "" {
		o.HLS += "?" + q
	}
	if o.DASH != "" {
		o.DASH += "?" + q
	}
	for name, u := range o.MP4 {
		o.MP4[name] = u + "?" + q
	}
	if o.Poster != "" {
		o.Poster += "?" + q
	}
	if o.Storyboard != "" {
		o.Storyboard += "?" + q
	}
}
