package node

// The quality report (issue 19): each encode scores the sample windows
// (transcoder.QualitySample) that fall in its chunk, against the chunk of
// the source and the renditions it has just made, and reports the sums
// with its result (cluster.WindowScore). The package task only adds them
// up with each rendition's frame count and rate from its packaged MP4
// (transcoder.QualityReport), so the measurement is off the job's last
// step, spread over the encodes, and needs no chunk source pulled to the
// packager; a window no encode scored (an encode by a node that predates
// scores, or one whose measurement failed) is measured there as before.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/transcoder"
)

// qualityWindows is the job's quality sample over its chunks.
func qualityWindows(j cluster.Job) []transcoder.QualityWindow {
	if j.Source.Video == nil {
		return nil
	}
	chunks := make([]transcoder.Chunk, len(j.Chunks))
	for i, c := range j.Chunks {
		chunks[i] = transcoder.Chunk{Index: i, Start: c.Start, Duration: c.Duration, Frames: c.Frames}
	}
	return transcoder.QualitySample(chunks, j.Source.Video.FrameRate)
}

// reference is how the source is turned into the picture the renditions
// are compared with (rotation, and the tone mapping of SDR rungs of an
// HDR source).
func reference(j cluster.Job) transcoder.Reference {
	return transcoder.Reference{Rotation: j.Source.Video.Rotation, ToneMap: toneMap(j)}
}

// scoreChunk scores the windows in an encoded chunk: src is the chunk of
// the source, outs its renditions. Like the report it is an extra: a
// failure is logged and leaves the windows to the packager.
func (w *worker) scoreChunk(ctx context.Context, j cluster.Job, chunk int, src string, outs []string, dir string) []cluster.WindowScore {
	var mine []transcoder.QualityWindow
	for _, win := range qualityWindows(j) {
		if win.Chunk == chunk {
			win.Source, win.At = src, win.SourceAt // the chunk's own renditions start with it
			mine = append(mine, win)
		}
	}
	if len(mine) == 0 || len(outs) != len(j.Renditions) {
		return nil
	}
	start := time.Now()
	scores, err := w.tc.MeasureWindows(ctx, mine, reference(j), cluster.TranscoderRenditions(j.Renditions), outs, dir)
	if err != nil {
		if ctx.Err() == nil {
			w.logger.Warn("quality windows not scored; the packager will measure them", "job", j.ID, "chunk", chunk, "err", err)
		}
		return nil
	}
	// At most QualityWindows lines per job: what a window costs on the
	// encode's slot (the Overhead benchmark reads it from the log).
	w.logger.Info("quality windows scored", "job", j.ID, "chunk", chunk, "windows", len(mine), "seconds", time.Since(start).Seconds())
	return cluster.ScoresOf(scores)
}

// quality is the job's report: the encodes' window scores, and any window
// they did not score measured here on the packaged MP4s, against the
// chunk of the source it falls in (pulled if need be: a few chunks at
// most, never the whole upload).
func (w *worker) quality(ctx context.Context, j cluster.Job, out string, pr *transcoder.PackageResult, dir string) ([]transcoder.Quality, error) {
	if j.Source.Video == nil {
		return nil, errors.New("no video facts")
	}
	mp4s := make([]string, len(j.Renditions))
	for i, r := range j.Renditions {
		rel, ok := pr.MP4[r.Name]
		if !ok {
			return nil, fmt.Errorf("no mp4 for %s", r.Name)
		}
		mp4s[i] = filepath.Join(out, filepath.FromSlash(rel))
	}
	windows := qualityWindows(j)
	scores := slices.DeleteFunc(cluster.TranscoderScores(j.Scores), func(s transcoder.WindowScore) bool { return s.Window >= len(windows) })
	missing := slices.DeleteFunc(slices.Clone(windows), func(win transcoder.QualityWindow) bool {
		return slices.ContainsFunc(scores, func(s transcoder.WindowScore) bool { return s.Window == win.Index })
	})
	if len(missing) > 0 {
		more, err := w.measureWindows(ctx, j, missing, mp4s, dir)
		if err != nil {
			return nil, err
		}
		scores = append(scores, more...)
	}
	if len(scores) == 0 {
		return nil, nil // nothing measurable (a synthetic encoder's renditions)
	}
	return transcoder.QualityReport(scores, j.Source.Video.FrameRate, cluster.TranscoderRenditions(j.Renditions), mp4s)
}

// measureWindows measures windows on the packaged renditions (mp4s).
func (w *worker) measureWindows(ctx context.Context, j cluster.Job, windows []transcoder.QualityWindow, mp4s []string, dir string) ([]transcoder.WindowScore, error) {
	refs := make([]cluster.BlobRef, len(windows))
	for i, win := range windows {
		refs[i] = j.Chunks[win.Chunk].Source
	}
	paths, err := w.fetchAll(ctx, nil, refs, func(i int) string { return fmt.Sprintf("chunk %d", windows[i].Chunk) })
	if err != nil {
		return nil, err
	}
	for i := range windows {
		windows[i].Source = paths[i]
	}
	return w.tc.MeasureWindows(ctx, windows, reference(j), cluster.TranscoderRenditions(j.Renditions), mp4s, dir)
}
