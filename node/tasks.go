package node

// What each kind of task does on the worker (worker.go runs them): split
// the source, encode the audio, encode a chunk's renditions, package the
// job, and measure its quality.

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/transcoder"
)

func (w *worker) split(ctx context.Context, j cluster.Job, dir string, res *cluster.TaskResult) error {
	src, err := w.input(ctx, j.SourceBlob, res)
	if err != nil {
		return fmt.Errorf("split %s: %w", j.ID, err)
	}
	probe := j.Source.Transcoder()
	chunks, err := w.tc.Split(ctx, src, &probe, splitPlan(j, w.freeSlots), dir) // chunkplan.go
	if err != nil {
		return fmt.Errorf("split %s: %w", j.ID, err)
	}
	for _, c := range chunks {
		ref, err := w.store(res, c.Path)
		if err != nil {
			return fmt.Errorf("split %s: store chunk %d: %w", j.ID, c.Index, err)
		}
		res.Chunks = append(res.Chunks, cluster.Chunk{Index: c.Index, Start: c.Start, Duration: c.Duration, Frames: c.Frames, Source: ref})
	}
	return nil
}

func (w *worker) audio(ctx context.Context, j cluster.Job, dir string, res *cluster.TaskResult) error {
	src, err := w.input(ctx, j.SourceBlob, res)
	if err != nil {
		return fmt.Errorf("audio %s: %w", j.ID, err)
	}
	out := filepath.Join(dir, "audio.m4a")
	probe, err := j.Source.Transcoder().SelectAudio(j.Options.Transcoder().Audio) // the streams the job keeps
	if err != nil {
		return fmt.Errorf("audio %s: %w", j.ID, err)
	}
	if err := w.tc.EncodeAudio(ctx, src, &probe, videoDuration(j.Source), out); err != nil {
		return fmt.Errorf("audio %s: %w", j.ID, err)
	}
	ref, err := w.store(res, out)
	if err != nil {
		return fmt.Errorf("audio %s: %w", j.ID, err)
	}
	res.Audio = ref
	return nil
}

func videoDuration(p cluster.Probe) float64 {
	if p.Video != nil && p.Video.Duration > 0 {
		return p.Video.Duration
	}
	return p.Duration
}

func encodeSettings(j cluster.Job) transcoder.EncodeSettings {
	s := transcoder.EncodeSettings{
		Renditions:     cluster.TranscoderRenditions(j.Renditions),
		SegmentSeconds: transcoder.DefaultSegmentSeconds,
		Preset:         j.Options.Preset,
		RateControl:    j.Options.RateControl,
		Thumbs:         thumbSettings(j), // thumbs.go
	}
	if j.Source.Video != nil {
		s.FrameRate = j.Source.Video.FrameRate
		s.Rotation = j.Source.Video.Rotation
		s.ToneMap = toneMap(j)
		s.HDR10 = transcoder.HDR10{MasteringDisplay: j.Source.Video.MasteringDisplay, MaxCLL: j.Source.Video.MaxCLL, MaxFALL: j.Source.Video.MaxFALL}
	}
	return s
}

// toneMap is the source's dynamic range, which the SDR rungs (Rendition.
// Range "") of an HDR source are tone-mapped from; HDR rungs keep it.
func toneMap(j cluster.Job) string {
	if j.Source.Video == nil {
		return ""
	}
	return transcoder.RangeOf(j.Source.Video.ColorTransfer)
}

// encode encodes one chunk into the job's renditions and stores them. It
// calls release once the encoder and the quality scoring (the CPU work a
// slot stands for) are done: hashing, syncing and filing the renditions
// then overlap the next task's encode instead of keeping its slot idle.
func (w *worker) encode(ctx context.Context, j cluster.Job, chunk int, dir string, res *cluster.TaskResult, progress transcoder.Progress, release func()) error {
	if chunk >= len(j.Chunks) {
		return fmt.Errorf("encode %s chunk %d: job has %d chunks", j.ID, chunk, len(j.Chunks))
	}
	c := j.Chunks[chunk]
	src, err := w.input(ctx, c.Source, res)
	if err != nil {
		return fmt.Errorf("encode %s chunk %d: %w", j.ID, chunk, err)
	}
	tc := transcoder.Chunk{Index: c.Index, Start: c.Start, Duration: c.Duration, Frames: c.Frames, Path: src}
	outs, err := w.tc.EncodeChunk(ctx, tc, encodeSettings(j), dir, progress)
	if err != nil {
		return fmt.Errorf("encode %s chunk %d: %w", j.ID, chunk, err)
	}
	res.Scores = w.scoreChunk(ctx, j, chunk, src, outs, filepath.Join(dir, "quality")) // quality.go
	release()
	refs, err := w.storeEach(res, outs, func(i int) string {
		if i < len(j.Renditions) {
			return "rendition " + j.Renditions[i].Name
		}
		return fmt.Sprintf("output %d", i)
	})
	if err != nil {
		return fmt.Errorf("encode %s chunk %d: %w", j.ID, chunk, err)
	}
	res.Outputs = refs
	if err := w.storeThumbs(res, dir); err != nil {
		return fmt.Errorf("encode %s chunk %d: %w", j.ID, chunk, err)
	}
	return nil
}

func (w *worker) pack(ctx context.Context, j cluster.Job, dir string, res *cluster.TaskResult) error {
	in := transcoder.PackageInput{Renditions: cluster.TranscoderRenditions(j.Renditions), SegmentSeconds: transcoder.DefaultSegmentSeconds, Duration: videoDuration(j.Source)}
	in.Chunks = make([][]string, len(j.Renditions))
	refs := make([]cluster.BlobRef, 0, len(j.Chunks)*len(j.Renditions)+1)
	for _, c := range j.Chunks {
		if len(c.Outputs) != len(j.Renditions) {
			return fmt.Errorf("package %s: chunk %d has %d outputs for %d renditions", j.ID, c.Index, len(c.Outputs), len(j.Renditions))
		}
		refs = append(refs, c.Outputs...)
	}
	if !j.Audio.IsZero() {
		refs = append(refs, j.Audio)
	}
	logFetched := func(pulled int, bytes int64, took time.Duration) {
		w.logger.Info("package inputs fetched", "job", j.ID, "inputs", len(refs), "pulled", pulled,
			"pulled_bytes", bytes, "seconds", took.Seconds())
	}
	paths, err := w.fetchAll(ctx, logFetched, refs, func(i int) string {
		if i == len(j.Chunks)*len(j.Renditions) {
			return "audio"
		}
		return fmt.Sprintf("chunk %d rendition %s", i/len(j.Renditions), j.Renditions[i%len(j.Renditions)].Name)
	})
	if err != nil {
		return fmt.Errorf("package %s: %w", j.ID, err)
	}
	for i, p := range paths[:len(j.Chunks)*len(j.Renditions)] {
		r := i % len(j.Renditions)
		in.Chunks[r] = append(in.Chunks[r], p)
	}
	if !j.Audio.IsZero() {
		in.Audio = paths[len(paths)-1]
	}
	subs, err := w.subtitleInputs(ctx, j, res) // subtitles.go
	if err != nil {
		return fmt.Errorf("package %s: %w", j.ID, err)
	}
	in.Subtitles = subs
	out := filepath.Join(dir, "out")
	t0 := time.Now()
	pr, err := w.tc.Package(ctx, in, out)
	if err != nil {
		return fmt.Errorf("package %s: %w", j.ID, err)
	}
	t1 := time.Now()
	w.storyboard(ctx, j, out, pr, res) // thumbs.go
	// Added up (and any window no encode scored measured) before the
	// files move into the blob store.
	q, err := w.quality(ctx, j, out, pr, filepath.Join(dir, "quality")) // quality.go
	w.logger.Info("packaged", "job", j.ID, "package_seconds", t1.Sub(t0).Seconds(), "storyboard_and_quality_seconds", time.Since(t1).Seconds())
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		// The report is an extra: the job publishes without it rather
		// than fail over it.
		w.logger.Warn("quality report failed; publishing without it", "job", j.ID, "err", err)
	}
	res.Quality = cluster.QualitiesOf(q)
	files, err := w.storeAll(res, out, pr.Files)
	if err != nil {
		return fmt.Errorf("package %s: %w", j.ID, err)
	}
	res.HLS, res.DASH, res.MP4 = pr.HLS, pr.DASH, pr.MP4
	if w.fsm.LogVersion() < cluster.LogV2 {
		res.Files = files // the first log format: one record per file
		return nil
	}
	// One manifest names every file: the result stays small however long
	// the media, and the files replicate as one set.
	m := cluster.NewManifest(j.ID, files, j.Chunks)
	ref, err := w.blobs.PutBytes(m.Encode(), w.pins.Holder(res))
	if err != nil {
		return fmt.Errorf("package %s: manifest: %w", j.ID, err)
	}
	res.Manifest, res.Published = ref, m.Published()
	return nil
}
