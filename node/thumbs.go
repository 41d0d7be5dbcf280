package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/transcoder"
)

// Thumbnails (issue 17): every encode also writes its chunk's storyboard
// frames (and, in the chunk holding the poster time, the poster) from the
// frames it decodes anyway, as one bundle blob recorded with the chunk;
// the package task assembles the sprite sheets, the WebVTT track and the
// poster from the bundles and publishes them with the other files.

// thumbSettings asks the encode for the job's storyboard frames: the
// interval and poster time from the video's duration, the sizes from the
// top rendition's (display) size.
func thumbSettings(j cluster.Job) transcoder.ThumbSettings {
	if j.Source.Video == nil || len(j.Renditions) == 0 {
		return transcoder.ThumbSettings{}
	}
	top := j.Renditions[0]
	for _, r := range j.Renditions[1:] {
		if r.Width*r.Height > top.Width*top.Height {
			top = r
		}
	}
	return transcoder.ThumbSettingsFor(videoDuration(j.Source), top.Width, top.Height,
		transcoder.RangeOf(j.Source.Video.ColorTransfer))
}

// storeThumbs stores the encode's thumbnail bundle, when it wrote one,
// and names it in the result.
func (w *worker) storeThumbs(res *cluster.TaskResult, dir string) error {
	p := filepath.Join(dir, transcoder.ThumbsFile)
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	ref, err := w.store(res, p)
	if err != nil {
		return fmt.Errorf("thumbnails: %w", err)
	}
	res.Thumbs = ref
	return nil
}

// storyboard assembles the poster and the storyboard into the package's
// out dir and lists them with its files. Like the quality report it is an
// extra: a job whose chunks have no bundles (encoded before thumbnails
// existed) or whose bundles cannot be fetched publishes without them.
func (w *worker) storyboard(ctx context.Context, j cluster.Job, out string, pr *transcoder.PackageResult, res *cluster.TaskResult) {
	ts := thumbSettings(j)
	if ts.Interval <= 0 {
		return
	}
	in := transcoder.StoryboardInput{Interval: ts.Interval, Duration: videoDuration(j.Source)}
	in.Bundles = make([]string, len(j.Chunks)) // "": a chunk without frames
	refs := make([]cluster.BlobRef, len(j.Chunks))
	for i, c := range j.Chunks {
		refs[i] = c.Thumbs // fetchEach skips the zero ones
	}
	if _, _, err := w.fetchEach(ctx, refs, func(i int, p string, err error) error {
		if err != nil {
			w.logger.Warn("storyboard frames unavailable; publishing without them", "job", j.ID, "chunk", j.Chunks[i].Index, "err", err)
			return nil
		}
		in.Bundles[i] = p
		return nil
	}); err != nil {
		return // ctx ended: the task stops anyway
	}
	sb, err := transcoder.WriteStoryboard(in, out)
	if err != nil {
		w.logger.Warn("storyboard failed; publishing without it", "job", j.ID, "err", err)
		return
	}
	pr.Files = append(pr.Files, sb.Files...)
	res.Poster, res.Storyboard = sb.Poster, sb.Storyboard
}
