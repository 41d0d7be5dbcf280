package cluster

import (
	"fmt"
	"slices"
	"time"

	"github.com/gosty/gosty/transcoder"
)

// SubtitleTrack is one subtitle track of a job: a WebVTT file on the
// outputs' timeline, stored as a blob by the node that received the
// upload (converted from a text stream of the source, or an uploaded
// sidecar file) before job.submit names it. The blob is referenced like
// the source: durable (kept at the replication factor) while the job
// keeps its source, released with it (refs.go).
type SubtitleTrack struct {
	Blob     BlobRef `json:"blob"`
	Language string  `json:"language,omitempty"` // BCP 47; "" unknown
	Name     string  `json:"name,omitempty"`
	Default  bool    `json:"default,omitempty"`
	Forced   bool    `json:"forced,omitempty"`
	// Stream is the source stream it was converted from; -1 for an
	// uploaded file.
	Stream int `json:"stream"`
}

// Bounds of a job's subtitle tracks and warnings (job.submit refuses more).
const (
	MaxSubtitleTracks = transcoder.MaxSubtitleTracks
	MaxJobWarnings    = 64
	maxTrackText      = 256
)

// SubtitleFile is where track n of j is published (its sidecar WebVTT),
// relative to the job's outputs.
func (j *Job) SubtitleFile(n int) string {
	return transcoder.SubtitleFile(n, j.Subtitles[n].Language)
}

// submitSubtitled applies job.submit (submit) and records the holders of
// the job's subtitle blobs: its origin and SubtitleHolders.
func (s *State) submitSubtitled(b SubmitJob, at time.Time) error {
	if len(b.SubtitleHolders) > MaxSubmitHolders || slices.Contains(b.SubtitleHolders, "") {
		return fmt.Errorf("submit %s: %w: at most %d subtitle holders, each named", b.Job.ID, ErrInvalid, MaxSubmitHolders)
	}
	if err := s.submit(b.Job, b.Holders, at); err != nil {
		return err
	}
	for _, t := range b.Job.Subtitles {
		s.addHolder(t.Blob, b.Job.Origin)
		for _, h := range b.SubtitleHolders {
			s.addHolder(t.Blob, h)
		}
	}
	return nil
}

// checkSubtitles validates what job.submit says of subtitles.
func checkSubtitles(j *Job) error {
	if len(j.Subtitles) > MaxSubtitleTracks || len(j.Warnings) > MaxJobWarnings {
		return fmt.Errorf("submit %s: %w: at most %d subtitle tracks and %d warnings", j.ID, ErrInvalid, MaxSubtitleTracks, MaxJobWarnings)
	}
	for i, s := range j.Subtitles {
		if s.Blob.IsZero() || !ValidHash(s.Blob.Hash) || len(s.Name) > maxTrackText || len(s.Language) > maxTrackText {
			return fmt.Errorf("submit %s: %w: subtitle track %d needs a blob, a short name and language", j.ID, ErrInvalid, i)
		}
	}
	for _, w := range j.Warnings {
		if len(w) > 4*maxTrackText {
			return fmt.Errorf("submit %s: %w: warning too long", j.ID, ErrInvalid)
		}
	}
	return nil
}
