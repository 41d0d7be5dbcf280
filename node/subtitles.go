package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/transcoder"
)

// subtitleExtractor is the part of the media tools that converts a
// source's text subtitle streams; a Transcoder without it (the benchmarks'
// synthetic one) publishes no subtitle streams, and says so in warnings.
type subtitleExtractor interface {
	ExtractSubtitles(ctx context.Context, src string, p *transcoder.Probe, streams []transcoder.SubtitleStream, outDir string) ([]string, error)
}

// subtitleTracks makes a new job's subtitle tracks where its upload came
// in, before job.submit: the source's text streams converted to WebVTT
// (the first MaxSubtitleTracks, less the uploaded files) and the sidecar
// files uploaded with it, each stored as a blob pinned for owner until
// the job names it. Warnings list what is not converted. A stream that
// ffmpeg cannot read is a warning too: the video is still worth
// transcoding.
func (n *Node) subtitleTracks(ctx context.Context, src string, probe *transcoder.Probe, sidecars []httpapi.Sidecar, owner any) ([]cluster.SubtitleTrack, []string, error) {
	convert, warnings := transcoder.SubtitlePlan(probe, max(transcoder.MaxSubtitleTracks-len(sidecars), 0))
	var tracks []cluster.SubtitleTrack
	if len(convert) > 0 {
		x, ok := n.tc.(subtitleExtractor)
		if !ok {
			return nil, append(warnings, fmt.Sprintf("%d subtitle streams were not converted: this build has no subtitle support", len(convert))), nil
		}
		dir, err := os.MkdirTemp(n.blobs.TempDir(), "subs-")
		if err != nil {
			return nil, nil, fmt.Errorf("subtitles: %w", err)
		}
		defer os.RemoveAll(dir)
		paths, err := x.ExtractSubtitles(ctx, src, probe, convert, dir)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, nil, err
		case err != nil && transcoder.IsMediaError(err):
			n.logger.Warn("subtitle streams not converted", "err", err)
			warnings = append(warnings, "the subtitle streams could not be converted: "+mediaReason(err))
		case err != nil:
			return nil, nil, fmt.Errorf("subtitles: %w", err)
		}
		for k, p := range paths {
			s := convert[k]
			if p == "" {
				warnings = append(warnings, fmt.Sprintf("subtitle stream %d has no cue and was left out", s.Index))
				continue
			}
			ref, err := n.blobs.PutFile(p, n.pins.Holder(owner))
			if err != nil {
				return nil, nil, fmt.Errorf("subtitles: store stream %d: %w", s.Index, err)
			}
			tracks = append(tracks, cluster.SubtitleTrack{Blob: ref, Language: s.Language,
				Name: transcoder.SubtitleName(len(tracks), s.Title, s.Language), Default: s.Default, Forced: s.Forced, Stream: s.Index})
		}
	}
	for _, sc := range sidecars {
		ref, err := n.blobs.PutBytes(sc.VTT, n.pins.Holder(owner))
		if err != nil {
			return nil, nil, fmt.Errorf("subtitles: store an uploaded file: %w", err)
		}
		tracks = append(tracks, cluster.SubtitleTrack{Blob: ref, Language: sc.Language,
			Name: transcoder.SubtitleName(len(tracks), sc.Name, sc.Language), Stream: -1})
	}
	return tracks, warnings, nil
}

func mediaReason(err error) string {
	var me *transcoder.MediaError
	if errors.As(err, &me) {
		return me.Reason
	}
	return err.Error()
}

// subtitleInputs fetches a job's subtitle tracks for its package task.
func (w *worker) subtitleInputs(ctx context.Context, j cluster.Job, res *cluster.TaskResult) ([]transcoder.SubtitleInput, error) {
	var out []transcoder.SubtitleInput
	for n, s := range j.Subtitles {
		p, err := w.input(ctx, s.Blob, res)
		if err != nil {
			return nil, fmt.Errorf("subtitle track %d: %w", n, err)
		}
		out = append(out, transcoder.SubtitleInput{Path: p, Language: s.Language, Name: s.Name, Default: s.Default, Forced: s.Forced})
	}
	return out, nil
}

// copySubtitles sends a new job's subtitle blobs to the nodes that took
// its source's copies (streamed, so pinned there like those until the
// job commits): the acknowledged upload then keeps its tracks if the
// origin dies. It returns the nodes that took every track; one that did
// not is left to the replicator (the tracks are durable blobs).
func (n *Node) copySubtitles(ctx context.Context, tracks []cluster.SubtitleTrack, holders []string) []string {
	if len(tracks) == 0 || len(holders) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, ackWait)
	defer cancel()
	var (
		mu  sync.Mutex
		out []string
		wg  sync.WaitGroup
	)
	for _, h := range holders {
		wg.Go(func() {
			addr := n.internalAddr(h)
			if addr == "" {
				return
			}
			for _, t := range tracks {
				if err := n.streamCopy(ctx, t.Blob, addr); err != nil {
					n.logger.Warn("copying a subtitle track to a holder of its source failed; replication makes the copy later",
						"to", h, "blob", t.Blob.Hash, "err", err)
					return
				}
			}
			mu.Lock()
			out = append(out, h)
			mu.Unlock()
		})
	}
	wg.Wait()
	sort.Strings(out)
	return out
}
