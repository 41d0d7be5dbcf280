// Package synthetic is a stand-in for the ffmpeg transcoder, for the
// control-plane benchmark: it takes a fixed wall time per second of media
// and writes blobs of realistic size, so that a cluster of many node
// processes on one machine is limited by scheduling, raft, leases,
// heartbeats and transfers rather than by CPU.
//
// It is never linked into a production binary: only cmd/gosty's
// synthetic.go, compiled with the gostysynthetic build tag, imports it (and
// hands it to the node as Config.Transcoder), and even then only when
// GOSTY_SYNTHETIC_ENCODER is set.
//
// Its sources are descriptors, not media: a small text file (see Source)
// that declares a duration, size, frame rate and bit rate. Probe reads the
// descriptor; Split fabricates one chunk file per chunk of the declared
// duration (bit rate × duration bytes); EncodeChunk sleeps for the chunk's
// duration × Factor (returning early on cancel, reporting progress) and
// writes one file per rendition (rendition bit rate × duration bytes, or
// BytesPerSecond split by bit rate); EncodeAudio writes 128 kb/s × duration;
// Package concatenates each rendition's chunks into one "MP4" and writes
// small HLS and DASH manifests. Every file starts with a header naming what
// it is made from, so distinct chunks never share a content hash, and a
// rerun writes the same bytes (as a deterministic encoder would).
package synthetic

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gosty/gosty/transcoder"
)

// Magic is the first line of a synthetic source descriptor.
const Magic = "GOSTY-SYNTHETIC-SOURCE"

// Source is what a descriptor declares.
type Source struct {
	Duration float64 `json:"duration"` // seconds
	Width    int     `json:"width"`
	Height   int     `json:"height"`
	FPS      float64 `json:"fps"`
	BitRate  int64   `json:"bit_rate"` // video bits/s: sizes the chunk files
	Audio    bool    `json:"audio"`
	// Name makes two otherwise equal descriptors different blobs.
	Name string `json:"name,omitempty"`
}

// Bytes is the descriptor file for s.
func (s Source) Bytes() []byte {
	js, _ := json.Marshal(s)
	return append([]byte(Magic+"\n"), append(js, '\n')...)
}

// Config is how the synthetic encoder behaves.
type Config struct {
	// Factor is the wall seconds a chunk encode takes per second of media.
	Factor float64
	// BytesPerSecond is the encoded bytes per second of media over all
	// renditions; 0 = each rendition's bit rate.
	BytesPerSecond int64
	// Logger, when set, gets one line per chunk encode ("synthetic
	// encode": when it began, how long the wait and the writes took), so
	// a benchmark can tell the encoder's time from the node's.
	Logger *slog.Logger
}

// Parse reads "factor[,bytes_per_second]", e.g. "0.2" or "0.2,175000".
func Parse(spec string) (Config, error) {
	parts := strings.Split(spec, ",")
	if len(parts) > 2 {
		return Config{}, fmt.Errorf("synthetic encoder %q: want factor[,bytes_per_second]", spec)
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(parts[0]), 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return Config{}, fmt.Errorf("synthetic encoder %q: factor must be a number ≥ 0", spec)
	}
	c := Config{Factor: f}
	if len(parts) == 2 {
		if c.BytesPerSecond, err = strconv.ParseInt(strings.TrimSpace(parts[1]), 10, 64); err != nil || c.BytesPerSecond < 0 {
			return Config{}, fmt.Errorf("synthetic encoder %q: bytes_per_second must be an integer ≥ 0", spec)
		}
	}
	return c, nil
}

// Transcoder is the synthetic encoder. It is safe for concurrent use.
type Transcoder struct{ cfg Config }

// New returns a synthetic encoder.
func New(cfg Config) *Transcoder { return &Transcoder{cfg: cfg} }

// fill is the body every synthetic file repeats after its header:
// incompressible, generated once.
var fill = func() []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 1<<20)
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}()

// writeBlob writes size bytes to path: the header, then fill.
func writeBlob(ctx context.Context, path, header string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	h := []byte(header + "\n")
	if int64(len(h)) > size {
		size = int64(len(h))
	}
	_, err = w.Write(h)
	left := size - int64(len(h))
	for err == nil && left > 0 {
		if err = ctx.Err(); err != nil {
			break
		}
		n := min(left, int64(len(fill)))
		_, err = w.Write(fill[:n])
		left -= n
	}
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// firstLine is the header of a synthetic file (its first line, at most
// 4 KiB).
func firstLine(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b := make([]byte, 4096)
	n, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", err
	}
	line, _, _ := bytes.Cut(b[:n], []byte("\n"))
	return string(line), nil
}

// Probe reads a descriptor. Anything else is refused as media the
// synthetic encoder cannot handle.
func (t *Transcoder) Probe(_ context.Context, path string) (*transcoder.Probe, error) {
	raw, err := readHead(path)
	if err != nil {
		return nil, err
	}
	magic, js, _ := bytes.Cut(raw, []byte("\n"))
	var s Source
	if string(magic) != Magic || json.Unmarshal(js, &s) != nil {
		return nil, &transcoder.MediaError{Reason: "synthetic encoder: not a synthetic source descriptor"}
	}
	if s.Duration <= 0 || s.Width <= 0 || s.Height <= 0 || s.FPS <= 0 {
		return nil, &transcoder.MediaError{Reason: "synthetic encoder: descriptor needs duration, width, height and fps"}
	}
	p := &transcoder.Probe{
		Format: "synthetic", Duration: s.Duration, Size: int64(len(raw)), BitRate: s.BitRate,
		Video: &transcoder.VideoStream{Codec: "h264", Width: s.Width, Height: s.Height, FrameRate: s.FPS,
			Duration: s.Duration, PixFmt: "yuv420p", BitRate: s.BitRate},
	}
	if s.Audio {
		p.Audio = &transcoder.AudioStream{Index: 1, Codec: "aac", Channels: 2, SampleRate: 48000,
			Duration: s.Duration, BitRate: transcoder.DefaultAudioBitrate}
	}
	return p, nil
}

// Split writes chunks of equal duration: round(duration / Seconds) of
// them, or the plan's count of an Equal plan.
func (t *Transcoder) Split(ctx context.Context, src string, p *transcoder.Probe, plan transcoder.ChunkPlan, dir string) ([]transcoder.Chunk, error) {
	if p == nil || p.Video == nil || p.Duration <= 0 {
		return nil, &transcoder.MediaError{Reason: "no video stream"}
	}
	chunkSeconds := plan.Seconds
	if chunkSeconds <= 0 {
		chunkSeconds = transcoder.DefaultChunkSeconds
	}
	id, err := sourceID(src)
	if err != nil {
		return nil, fmt.Errorf("synthetic split: %w", err)
	}
	n := max(1, int(math.Round(p.Duration/chunkSeconds)))
	if plan.Equal {
		n = plan.Count(p.Duration)
	}
	d := p.Duration / float64(n)
	out := make([]transcoder.Chunk, n)
	for i := range n {
		path := filepath.Join(dir, fmt.Sprintf("chunk-%05d.mkv", i))
		size := int64(float64(p.BitRate) / 8 * d)
		if err := writeBlob(ctx, path, fmt.Sprintf("synthetic chunk %d of %s", i, id), size); err != nil {
			return nil, fmt.Errorf("synthetic split: %w", err)
		}
		out[i] = transcoder.Chunk{Index: i, Start: float64(i) * d, Duration: d,
			Frames: int(math.Round(d * p.Video.FrameRate)), Path: path}
	}
	return out, nil
}

// sourceID names a descriptor in the headers of what is made from it.
func sourceID(path string) (string, error) {
	b, err := readHead(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8]), nil
}

// readHead reads at most maxDescriptor bytes of a file: descriptors are
// small, and anything bigger is not one.
func readHead(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxDescriptor))
}

const maxDescriptor = 64 << 10

// EncodeAudio writes 128 kb/s of "audio" for the video's duration.
func (t *Transcoder) EncodeAudio(ctx context.Context, src string, p *transcoder.Probe, videoDuration float64, out string) error {
	if p == nil || p.Audio == nil {
		return errors.New("encode audio: source has no audio stream")
	}
	id, err := sourceID(src)
	if err != nil {
		return fmt.Errorf("synthetic audio: %w", err)
	}
	size := int64(transcoder.DefaultAudioBitrate / 8 * videoDuration)
	return writeBlob(ctx, out, "synthetic audio of "+id, size)
}

// EncodeChunk waits for the chunk's duration × Factor, then writes one file
// per rendition (outDir/r<i>.mp4, as the real encoder names them).
func (t *Transcoder) EncodeChunk(ctx context.Context, c transcoder.Chunk, s transcoder.EncodeSettings, outDir string, progress transcoder.Progress) ([]string, error) {
	if len(s.Renditions) == 0 {
		return nil, errors.New("encode chunk: no renditions")
	}
	in, err := firstLine(c.Path)
	if err != nil {
		return nil, fmt.Errorf("encode chunk %d: %w", c.Index, err)
	}
	began := time.Now()
	if err := sleep(ctx, time.Duration(c.Duration*t.cfg.Factor*float64(time.Second)), progress); err != nil {
		return nil, err
	}
	slept := time.Since(began)
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	var total int64
	for _, r := range s.Renditions {
		total += r.Bitrate
	}
	outs := make([]string, len(s.Renditions))
	for i, r := range s.Renditions {
		size := int64(float64(r.Bitrate) / 8 * c.Duration)
		if t.cfg.BytesPerSecond > 0 && total > 0 {
			size = int64(float64(t.cfg.BytesPerSecond) * c.Duration * float64(r.Bitrate) / float64(total))
		}
		outs[i] = filepath.Join(outDir, fmt.Sprintf("r%d.mp4", i))
		if err := writeBlob(ctx, outs[i], fmt.Sprintf("synthetic %s (%s) of %s", r.Name, s.Preset, in), size); err != nil {
			return nil, fmt.Errorf("encode chunk %d: %w", c.Index, err)
		}
	}
	if progress != nil {
		progress(1)
	}
	if t.cfg.Logger != nil {
		t.cfg.Logger.Info("synthetic encode", "chunk", c.Index, "began", began,
			"wait_seconds", slept.Seconds(), "write_seconds", (time.Since(began) - slept).Seconds())
	}
	return outs, nil
}

// sleep waits d, reporting progress about every 250 ms, and returns
// ctx's error if it ends first.
func sleep(ctx context.Context, d time.Duration, progress transcoder.Progress) error {
	start := time.Now()
	end := time.NewTimer(d)
	defer end.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-end.C:
			return nil
		case <-tick.C:
			if progress != nil && d > 0 {
				progress(min(1, float64(time.Since(start))/float64(d)))
			}
		}
	}
}

// Package concatenates each rendition's chunks into mp4/<name>.mp4 and
// writes a master playlist and an MPD naming them.
func (t *Transcoder) Package(ctx context.Context, in transcoder.PackageInput, outDir string) (*transcoder.PackageResult, error) {
	if len(in.Renditions) == 0 || len(in.Chunks) != len(in.Renditions) {
		return nil, fmt.Errorf("package: %d renditions but %d chunk lists", len(in.Renditions), len(in.Chunks))
	}
	if err := os.MkdirAll(filepath.Join(outDir, "mp4"), 0o755); err != nil {
		return nil, err
	}
	res := &transcoder.PackageResult{HLS: "master.m3u8", DASH: "manifest.mpd", MP4: map[string]string{}}
	var master, mpd strings.Builder
	master.WriteString("#EXTM3U\n")
	mpd.WriteString("<?xml version=\"1.0\"?>\n<MPD><Period><AdaptationSet>\n")
	for i, r := range in.Renditions {
		rel := "mp4/" + r.Name + ".mp4"
		if err := concat(ctx, filepath.Join(outDir, filepath.FromSlash(rel)), in.Chunks[i], in.Audio); err != nil {
			return nil, fmt.Errorf("package %s: %w", r.Name, err)
		}
		res.MP4[r.Name] = rel
		res.Files = append(res.Files, rel)
		fmt.Fprintf(&master, "#EXT-X-STREAM-INF:BANDWIDTH=%d,RESOLUTION=%dx%d\n%s\n", r.Bitrate, r.Width, r.Height, rel)
		fmt.Fprintf(&mpd, "<Representation id=%q bandwidth=\"%d\" width=\"%d\" height=\"%d\"><BaseURL>%s</BaseURL></Representation>\n",
			r.Name, r.Bitrate, r.Width, r.Height, rel)
	}
	mpd.WriteString("</AdaptationSet></Period></MPD>\n")
	for name, body := range map[string]string{res.HLS: master.String(), res.DASH: mpd.String()} {
		if err := os.WriteFile(filepath.Join(outDir, name), []byte(body), 0o644); err != nil {
			return nil, err
		}
		res.Files = append(res.Files, name)
	}
	return res, nil
}

func concat(ctx context.Context, out string, parts []string, audio string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	if audio != "" {
		parts = append(parts[:len(parts):len(parts)], audio)
	}
	for _, p := range parts {
		if err := ctx.Err(); err != nil {
			return err
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, in)
		in.Close()
		if err != nil {
			return err
		}
	}
	return f.Close()
}

// MeasureWindows scores nothing: synthetic renditions have no pictures.
func (t *Transcoder) MeasureWindows(context.Context, []transcoder.QualityWindow, transcoder.Reference, []transcoder.Rendition, []string, string) ([]transcoder.WindowScore, error) {
	return nil, nil
}

// Fragment is not offered: synthetic chunks cannot be played live.
func (t *Transcoder) Fragment(context.Context, string, float64, float64) (*transcoder.Fragmented, error) {
	return nil, errors.New("synthetic encoder: no live view")
}
