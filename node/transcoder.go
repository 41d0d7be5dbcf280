package node

import (
	"context"
	"log/slog"

	"github.com/gosty/gosty/transcoder"
)

// Transcoder is what a node asks of the media tools: probe an upload, and
// the four task kinds the worker runs, the quality report and the live view's remux. *transcoder.Transcoder (ffmpeg) is
// the only implementation a production build has.
type Transcoder interface {
	Probe(ctx context.Context, path string) (*transcoder.Probe, error)
	Split(ctx context.Context, src string, p *transcoder.Probe, chunkSeconds float64, dir string) ([]transcoder.Chunk, error)
	EncodeAudio(ctx context.Context, src string, p *transcoder.Probe, videoDuration float64, out string) error
	EncodeChunk(ctx context.Context, c transcoder.Chunk, s transcoder.EncodeSettings, outDir string, progress transcoder.Progress) ([]string, error)
	Package(ctx context.Context, in transcoder.PackageInput, outDir string) (*transcoder.PackageResult, error)
	// MeasureQuality scores packaged renditions against source windows.
	MeasureQuality(ctx context.Context, windows []transcoder.QualityWindow, ref transcoder.Reference, fps float64, rs []transcoder.Rendition, mp4s []string, workDir string) ([]transcoder.Quality, error)
	// Fragment remuxes an encoded chunk for the live (play while encoding) view.
	Fragment(ctx context.Context, in string, fragSeconds, mediaSeconds float64) (*transcoder.Fragmented, error)
}

var _ Transcoder = (*transcoder.Transcoder)(nil)

// replaceTranscoder is nil in production builds. A build with the
// gostysynthetic tag (benchmarks only: see synthetic.go) sets it, and when
// it returns a Transcoder the node uses that one instead of ffmpeg.
var replaceTranscoder func(cfg Config, logger *slog.Logger) (Transcoder, error)

// newTranscoder returns the node's media tools: ffmpeg, unless a benchmark
// build swapped them.
func newTranscoder(cfg Config, logger *slog.Logger, threads int) (Transcoder, error) {
	if replaceTranscoder != nil {
		tc, err := replaceTranscoder(cfg, logger)
		if err != nil || tc != nil {
			return tc, err
		}
	}
	return transcoder.New(transcoder.Config{FFmpeg: cfg.FFmpeg, FFprobe: cfg.FFprobe, Logger: logger, Threads: threads, MaxFileBytes: cfg.MaxUploadBytes, Unconfined: cfg.UnconfinedMedia})
}
