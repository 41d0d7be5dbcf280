package transcoder

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gosty/gosty/transcoder/confine"
)

// cutEpsilon is subtracted from every cut time so that float formatting
// can never place a cut just after the keyframe it is meant to hit (the
// segment muxer would then cut at the next keyframe instead).
const cutEpsilon = 0.001

// keyframeIndex is what Split needs from a video stream's packets.
type keyframeIndex struct {
	keyframes   []float64 // pts of keyframes, seconds, sorted, relative to the format start
	packets     int       // total video packets
	formatStart float64   // container start_time, which ffmpeg subtracts on output
	videoStart  float64   // first video pts, relative to the format start
	videoEnd    float64   // last video pts, relative to the format start
}

// Split cuts the source's first video stream into keyframe-aligned chunks
// written to dir as chunk-NNNNN.mkv (stream copy, timestamps reset to zero),
// as plan says (ChunkPlan: a user's chunk length, or a planned number of
// equal chunks).
//
// When the source's keyframes are so sparse that some chunk would be longer
// than the limit (MaxChunkSeconds, or twice the chunk length if that is
// larger), the video is first re-encoded near-losslessly (x264 ultrafast,
// CRF 12) into dir with a keyframe forced every chunk length, and that
// intermediate is split instead: a long chunk is one long,
// unparallelisable task whose lease and retry cost grow with it.
func (t *Transcoder) Split(ctx context.Context, src string, p *Probe, plan ChunkPlan, dir string) ([]Chunk, error) {
	if p == nil || p.Video == nil {
		return nil, &MediaError{Reason: "no video stream"}
	}
	if plan.Seconds == 0 {
		plan.Seconds = DefaultChunkSeconds
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("split %s: %w", src, err)
	}
	input, idx, cuts, err := t.cutPoints(ctx, src, p, plan, dir)
	if err != nil {
		return nil, err
	}
	files, err := t.segment(ctx, input, input == src, p, cuts, dir)
	if err != nil {
		return nil, fmt.Errorf("split %s: %w", src, err)
	}
	chunks, err := t.chunksOf(ctx, files, idx, cuts, p.Video.Duration, splitLimit(plan))
	if err != nil {
		return nil, fmt.Errorf("split %s: %w", src, err)
	}
	if input != src {
		_ = os.Remove(input)
	}
	t.log.Info("split done", "src", src, "chunks", len(chunks), "frames", idx.packets, "rekeyed", input != src, "equal", plan.Equal)
	return chunks, nil
}

// splitLimit is the longest chunk a plan accepts before Split re-keys, and
// keyLength the keyframe interval a re-key forces.
func splitLimit(plan ChunkPlan) float64 { return max(MaxChunkSeconds, 2*keyLength(plan)) }

func keyLength(plan ChunkPlan) float64 {
	return min(max(plan.Seconds, MinChunkSeconds), MaxUserChunkSeconds)
}

// cuts chooses the cut times of a plan on a keyframe index.
func (plan ChunkPlan) cuts(idx keyframeIndex, total float64) []float64 {
	if plan.Equal {
		return equalCuts(idx.keyframes, idx.videoStart, total, plan.Count(total))
	}
	return chooseCuts(idx.keyframes, idx.videoStart, total, keyLength(plan))
}

// cutPoints lists the source's keyframes and chooses the cuts, re-keying
// the source into dir first when its keyframes are too sparse for the
// plan. It returns the file to cut (the source or the re-keyed copy).
func (t *Transcoder) cutPoints(ctx context.Context, src string, p *Probe, plan ChunkPlan, dir string) (string, keyframeIndex, []float64, error) {
	total, limit := p.Video.Duration, splitLimit(plan)
	idx, err := t.keyframes(ctx, src, strconv.Itoa(p.Video.Index), true, total)
	if err != nil {
		return "", idx, nil, fmt.Errorf("split %s: %w", src, err)
	}
	if err := checkComplete(p, idx); err != nil {
		return "", idx, nil, err
	}
	cuts := plan.cuts(idx, total)
	if cutsWithin(cuts, idx.videoStart, total, limit) {
		return src, idx, cuts, nil
	}
	t.log.Info("source keyframes too sparse, re-keying", "src", src, "keyframes", len(idx.keyframes), "chunk_seconds", plan.Seconds)
	rekeyed := filepath.Join(dir, "rekeyed.mkv")
	if err := t.rekey(ctx, src, p, keyLength(plan), rekeyed); err != nil {
		return "", idx, nil, err
	}
	idx2, err := t.keyframes(ctx, rekeyed, "v:0", false, total)
	if err != nil {
		return "", idx, nil, fmt.Errorf("split %s: re-keyed: %w", src, err)
	}
	if idx2.packets != idx.packets {
		return "", idx, nil, fmt.Errorf("split %s: re-key changed the frame count from %d to %d", src, idx.packets, idx2.packets)
	}
	cuts = plan.cuts(idx2, total)
	if !cutsWithin(cuts, idx2.videoStart, total, limit) {
		return "", idx, nil, fmt.Errorf("split %s: chunks still longer than %g s after re-keying", src, limit)
	}
	return rekeyed, idx2, cuts, nil
}

// segment cuts input at cuts by stream copy into dir and returns the chunk
// files in order. userInput is the user's file (not our re-keyed copy).
func (t *Transcoder) segment(ctx context.Context, input string, userInput bool, p *Probe, cuts []float64, dir string) ([]string, error) {
	// Remove leftovers of an earlier attempt so the glob below sees only ours.
	old, _ := filepath.Glob(filepath.Join(dir, "chunk-*.mkv"))
	for _, f := range old {
		_ = os.Remove(f)
	}
	args := ffmpegBase()
	// Only the probed video stream is copied: never a cover picture, a
	// subtitle, data or attachment stream.
	vmap := "0:v:0"
	if userInput {
		args = append(args, userInputArgs()...)
		vmap = "0:" + strconv.Itoa(p.Video.Index)
	}
	args = append(args, "-i", inputURL(input), "-map", vmap, "-c", "copy", "-f", "segment")
	if len(cuts) > 0 {
		ts := make([]string, len(cuts))
		for i, c := range cuts {
			// Cut times are in output time, which ffmpeg shifts by the
			// container start.
			ts[i] = fmtSec(max(c-cutEpsilon, 0))
		}
		args = append(args, "-segment_times", strings.Join(ts, ","))
	} else {
		args = append(args, "-segment_time", "1000000")
	}
	args = append(args, "-reset_timestamps", "1", "-segment_format", "matroska",
		filepath.Join(dir, "chunk-%05d.mkv"))
	if err := t.run(ctx, copyDeadline(p.Video.Duration), t.ffmpeg, args, nil, confine.Policy{Read: []string{input}, Write: []string{dir}}); err != nil {
		return nil, err
	}
	files, _ := filepath.Glob(filepath.Join(dir, "chunk-*.mkv"))
	sort.Strings(files)
	if len(files) != len(cuts)+1 {
		return nil, fmt.Errorf("expected %d chunks, ffmpeg wrote %d", len(cuts)+1, len(files))
	}
	return files, nil
}

// chunksOf counts each chunk file's frames and duration and checks that
// they add up to the source's frames.
func (t *Transcoder) chunksOf(ctx context.Context, files []string, idx keyframeIndex, cuts []float64, total, limit float64) ([]Chunk, error) {
	starts := append([]float64{idx.videoStart}, cuts...)
	// Counting each chunk is a process start per chunk; run them side by
	// side, since the split sits on the job's critical path.
	counts := make([]streamCount, len(files))
	errs := make([]error, len(files))
	sem := make(chan struct{}, max(runtime.NumCPU(), 1))
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			counts[i], errs[i] = t.countPackets(ctx, f, "v:0", limit)
		}()
	}
	wg.Wait()
	chunks := make([]Chunk, len(files))
	sum := 0
	for i, f := range files {
		if errs[i] != nil {
			return nil, errs[i]
		}
		end := idx.videoStart + total
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		d := counts[i].Duration
		if d <= 0 {
			d = end - starts[i]
		}
		chunks[i] = Chunk{Index: i, Start: starts[i] - idx.videoStart, Duration: d, Frames: counts[i].Packets, Path: f}
		sum += counts[i].Packets
	}
	if sum != idx.packets {
		return nil, fmt.Errorf("chunks hold %d frames, source has %d", sum, idx.packets)
	}
	return chunks, nil
}

// chooseCuts picks, greedily from the start, the keyframe nearest to the
// previous cut plus target, keeping every chunk (including the tail) at
// least MinChunkSeconds long. Times are relative to the container start;
// total is the video duration.
func chooseCuts(keyframes []float64, start, total, target float64) []float64 {
	end := start + total
	var cuts []float64
	prev := start
	for {
		// A remainder shorter than target+MinChunkSeconds stays whole:
		// cutting it would leave a stub.
		if end-prev < target+MinChunkSeconds {
			return cuts
		}
		want := prev + target
		lo := sort.SearchFloat64s(keyframes, prev+MinChunkSeconds-1e-6)
		hi := sort.SearchFloat64s(keyframes, end-MinChunkSeconds+1e-6) - 1
		found := lo <= hi
		best := 0.0
		if found {
			i := min(max(sort.SearchFloat64s(keyframes, want), lo), hi)
			best = keyframes[i]
			if i-1 >= lo && math.Abs(keyframes[i-1]-want) <= math.Abs(best-want) {
				best = keyframes[i-1]
			}
		}
		if !found {
			return cuts
		}
		cuts = append(cuts, best)
		prev = best
	}
}

func cutsWithin(cuts []float64, start, total, limit float64) bool {
	prev := start
	for _, c := range append(cuts, start+total) {
		if c-prev > limit+1e-6 {
			return false
		}
		prev = c
	}
	return true
}

// keyframes lists the packets of one video stream of a file (demux only,
// no decoding). sel is an ffprobe stream specifier: the probed stream's
// index for a user's file (which may hold a cover picture or other video
// streams before it), "v:0" for our own intermediates. ffprobe's output is
// parsed as it arrives, so a long source never sits in memory as text.
func (t *Transcoder) keyframes(ctx context.Context, path, sel string, userInput bool, mediaSeconds float64) (keyframeIndex, error) {
	args := []string{"-v", "error", "-hide_banner"}
	if userInput {
		args = append(args, userInputArgs()...)
	} else {
		args = append(args, "-protocol_whitelist", "file")
	}
	args = append(args, "-select_streams", sel, "-show_entries", "packet=pts_time,dts_time,flags:format=start_time",
		"-of", "csv", "-i", inputURL(path))
	sc := newKeyframeScanner()
	if err := t.run(ctx, demuxDeadline(mediaSeconds), t.ffprobe, args, sc, confine.Policy{Read: []string{path}}); err != nil {
		return keyframeIndex{}, fmt.Errorf("list keyframes: %w", err)
	}
	return sc.index()
}

// keyframeScanner reads ffprobe's CSV packet lines ("packet,pts,dts,flags"
// and "format,start_time") as an io.Writer.
type keyframeScanner struct {
	idx   keyframeIndex
	kfAbs []float64
	// kfOpen[i] is set when a packet after keyframe i in decode order is
	// shown before it: leading pictures (HEVC RASL, an open GOP) that
	// refer to the GOP before. A stream copy cut there leaves them
	// undecodable, so such keyframes are no cut points.
	kfOpen            []bool
	firstPTS, lastPTS float64
	partial           []byte // the line so far
	overlong          bool   // the line so far is longer than maxCSVLine: skip it
}

func newKeyframeScanner() *keyframeScanner {
	return &keyframeScanner{firstPTS: math.Inf(1), lastPTS: math.Inf(-1)}
}

// maxCSVLine bounds a line we are willing to buffer; ffprobe's packet
// lines are a few dozen bytes, and longer ones are skipped whole.
const maxCSVLine = 4 << 10

func (k *keyframeScanner) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		part := p
		if i >= 0 {
			part = p[:i]
		}
		if !k.overlong {
			if len(k.partial)+len(part) > maxCSVLine {
				k.overlong, k.partial = true, k.partial[:0]
			} else {
				k.partial = append(k.partial, part...)
			}
		}
		if i < 0 {
			break
		}
		if !k.overlong {
			k.line(string(k.partial))
		}
		k.partial, k.overlong = k.partial[:0], false
		p = p[i+1:]
	}
	return n, nil
}

func (k *keyframeScanner) line(l string) {
	f := strings.Split(strings.TrimRight(l, "\r"), ",")
	switch f[0] {
	case "packet":
		if len(f) < 4 {
			return
		}
		k.idx.packets++
		ts, err := strconv.ParseFloat(f[1], 64)
		if err != nil || math.IsNaN(ts) || math.IsInf(ts, 0) { // raw streams may lack pts; dts is the next best
			if ts, err = strconv.ParseFloat(f[2], 64); err != nil || math.IsNaN(ts) || math.IsInf(ts, 0) {
				return
			}
		}
		k.firstPTS = min(k.firstPTS, ts)
		k.lastPTS = max(k.lastPTS, ts)
		switch {
		case strings.Contains(f[3], "K"):
			k.kfAbs = append(k.kfAbs, ts)
			k.kfOpen = append(k.kfOpen, false)
		case len(k.kfAbs) > 0 && ts < k.kfAbs[len(k.kfAbs)-1]-1e-6:
			k.kfOpen[len(k.kfOpen)-1] = true
		}
	case "format":
		if len(f) >= 2 {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
				k.idx.formatStart = v
			}
		}
	}
}

func (k *keyframeScanner) index() (keyframeIndex, error) {
	if len(k.partial) > 0 && !k.overlong {
		k.line(string(k.partial))
	}
	k.partial, k.overlong = nil, false
	idx := k.idx
	if idx.packets == 0 || len(k.kfAbs) == 0 {
		return keyframeIndex{}, &MediaError{Reason: "video stream has no keyframes"}
	}
	// The first keyframe starts the stream whatever follows it; an open
	// one later is left out (see kfOpen), and if that leaves the cuts too
	// sparse, Split re-keys.
	kfs := []float64{k.kfAbs[0]}
	for i, t := range k.kfAbs[1:] {
		if !k.kfOpen[i+1] {
			kfs = append(kfs, t)
		}
	}
	sort.Float64s(kfs)
	for _, t := range kfs {
		idx.keyframes = append(idx.keyframes, t-idx.formatStart)
	}
	idx.videoStart = max(k.firstPTS-idx.formatStart, 0)
	idx.videoEnd = max(k.lastPTS-idx.formatStart, idx.videoStart)
	return idx, nil
}

// rekey writes a video-only intermediate with a keyframe every chunkSeconds.
// CRF 12 ultrafast is close to lossless and cheap; -noautorotate keeps the
// stored orientation so EncodeChunk's rotation still applies exactly once,
// and passthrough timing keeps the frame count identical to the source.
func (t *Transcoder) rekey(ctx context.Context, src string, p *Probe, chunkSeconds float64, out string) error {
	args := ffmpegBase()
	args = append(args, "-noautorotate")
	args = append(args, userInputArgs()...)
	args = append(args, "-i", inputURL(src), "-map", "0:"+strconv.Itoa(p.Video.Index), "-an", "-sn", "-dn",
		"-c:v", "libx264", "-preset", "ultrafast", "-crf", "12",
		"-force_key_frames", "expr:gte(t,n_forced*"+fmtSec(chunkSeconds)+")",
		"-fps_mode", "passthrough")
	if t.threads > 0 {
		args = append(args, "-threads", strconv.Itoa(t.threads))
	}
	args = append(args, "-f", "matroska", "-y", out)
	// Near-lossless ultrafast x264 of the whole source, one rendition.
	if err := t.run(ctx, deadline(5*time.Minute, 100, p.Video.Duration), t.ffmpeg, args, nil,
		confine.Policy{Read: []string{src}, Write: []string{filepath.Dir(out)}}); err != nil {
		_ = os.Remove(out)
		return fmt.Errorf("split %s: re-key: %w", src, err)
	}
	return nil
}

// checkComplete refuses a source whose frames stop well before the duration
// its header declares, or a transport stream cut mid-packet: an upload that
// broke off. Transcoding what is there would publish a silently shortened
// video as if it were whole.
func checkComplete(p *Probe, idx keyframeIndex) error {
	frame := 0.0
	if p.Video.FrameRate > 0 {
		frame = 1 / p.Video.FrameRate
	}
	covered := idx.videoEnd - idx.videoStart + frame
	if missing := p.Video.Duration - covered; missing > max(1.0, 0.05*p.Video.Duration) {
		return &MediaError{Reason: fmt.Sprintf("file is truncated or damaged: its header says the video lasts %.1f s but its frames stop at %.1f s",
			p.Video.Duration, covered)}
	}
	if strings.Contains(p.Format, "mpegts") && p.Size > 0 && p.Size%188 != 0 && p.Size%192 != 0 && p.Size%204 != 0 {
		return &MediaError{Reason: "file is truncated: the transport stream ends in the middle of a packet"}
	}
	return nil
}
