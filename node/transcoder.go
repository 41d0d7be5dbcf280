package node

import (
	"context"
	"log/slog"

	"github.com/gosty/gosty/transcoder"
)

// Transcoder is what a node asks of the media tools: probe an upload, and
// the four task kinds the worker runs, the quality windows and the live view's remux. *transcoder.Transcoder (ffmpeg) is
// the only implementation a production build has.
type Transcoder interface {
	Probe(ctx context.Context, path string) (*transcoder.Probe, error)
	Split(ctx context.Context, src string, p *transcoder.Probe, plan transcoder.ChunkPlan, dir string) ([]transcoder.Chunk, error)
	EncodeAudio(ctx context.Context, src string, p *transcoder.Probe, videoDuration float64, out string) error
	EncodeChunk(ctx context.Context, c transcoder.Chunk, s transcoder.EncodeSettings, outDir string, progress transcoder.Progress) ([]string, error)
	Package(ctx context.Context, in transcoder.PackageInput, outDir string) (*transcoder.PackageResult, error)
	// MeasureWindows scores renditions (packaged, or a chunk's encodes)
	// against source windows.
	MeasureWindows(ctx context.Context, windows []transcoder.QualityWindow, ref transcoder.Reference, rs []transcoder.Rendition, videos []string, workDir string) ([]transcoder.WindowScore, error)
	// Fragment remuxes an encoded chunk for the live (play while encoding) view.
	Fragment(ctx context.Context, in string, fragSeconds, mediaSeconds float64) (*transcoder.Fragmented, error)
}

var _ Transcoder = (*transcoder.Transcoder)(nil)

// newTranscoder returns the node's media tools: ffmpeg, unless the
// configuration brings its own (a benchmark build's synthetic encoder).
func newTranscoder(cfg Config, logger *slog.Logger, threads int) (Transcoder, error) {
	if cfg.Transcoder != nil {
		return cfg.Transcoder, nil
	}
	return transcoder.New(transcoder.Config{FFmpeg: cfg.FFmpeg, FFprobe: cfg.FFprobe, Logger: logger, Threads: threads, MaxFileBytes: cfg.MaxUploadBytes, Unconfined: cfg.UnconfinedMedia})
}
