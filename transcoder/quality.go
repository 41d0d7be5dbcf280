package transcoder

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/gosty/gosty/transcoder/confine"
)

// Quality is how close one rendition is to the source, measured on a
// sample of it (see MeasureQuality). It is stored in the job log.
type Quality struct {
	SSIM float64 `json:"ssim"`    // mean SSIM (Y, U, V weighted by plane size), 0..1
	PSNR float64 `json:"psnr_db"` // PSNR of the mean squared error over the sampled frames, dB (capped at MaxPSNR)
	// Frames is the rendition's whole frame count (its MP4's sample
	// count), which must equal the source's.
	Frames         int     `json:"frames"`
	SampledFrames  int     `json:"sampled_frames"`
	SampledSeconds float64 `json:"sampled_seconds"`
	// Bitrate is the rendition's average video rate as encoded (its video
	// samples' bytes over its frames' time): against the rung's rate it shows
	// what capped CRF saved on easy content, or that ABR met its target.
	Bitrate int64 `json:"bitrate,omitempty"`
}

// Reference is what turns a source window into the picture a rendition is
// compared with: the encode's rotation and, for the tone-mapped (SDR) rungs
// of an HDR source, the same tone mapping, while its HDR rungs (Rendition.
// Range) meet the untouched source: like is compared with like.
type Reference struct {
	Rotation int
	ToneMap  string // as EncodeSettings.ToneMap
}

// Sampling of MeasureQuality: QualityWindows windows spread evenly over
// the video, each QualityWindowSeconds long on a video of a minute or more
// and shorter on a shorter one (QualityWindowLength).
const (
	QualityWindows       = 3
	QualityWindowSeconds = 1.0
	// QualityShare is the most of a video the windows sample together,
	// down to QualityMinFrames frames a window. A window costs its encode
	// slot about 1.3 times the encode of the same stretch (six renditions
	// decoded, scaled and compared twice): three windows of 1 s were 16%
	// of a 20 s clip's slot work and left its slots ending 14 s apart
	// (bench/results/12-overhead-quiet.md), and 5% of a 60 s one's.
	QualityShare     = 0.05
	QualityMinFrames = 10
	// MaxPSNR stands in for identical frames (infinite PSNR), which JSON
	// cannot carry.
	MaxPSNR = 100.0
)

// QualityWindow is one sampled stretch of the video: Seconds of it from At
// in the renditions, and the same frames from SourceAt in Source, a chunk
// of the source as Split made it (a stream copy with timestamps from zero).
// The renditions are either the packaged ones (At on the job's timeline)
// or the chunk's own encodes (At equal to SourceAt).
type QualityWindow struct {
	Index    int     // place in QualitySample's list, which WindowScore.Window names
	Chunk    int     // index of the chunk Source is
	Source   string  // local path of that chunk; filled in by the caller
	SourceAt float64 // seconds into the chunk
	At       float64 // seconds into the renditions
	Seconds  float64
}

// WindowScore is what one window scored (MeasureWindows): for every
// rendition, sums over the window's frames, which add up over windows.
// An encode measures the windows in its chunk and the package task adds
// them up (QualityReport), so a job's report costs the package nothing.
type WindowScore struct {
	Window     int        `json:"window"` // QualityWindow.Index
	Renditions []ScoreSum `json:"renditions"`
}

// ScoreSum is one rendition's sums over a window's frames.
type ScoreSum struct {
	SSIM   float64 `json:"ssim_sum"` // of the frames' SSIM (All: Y, U, V weighted by plane size)
	MSE    float64 `json:"mse_sum"`  // of the frames' mean squared error over the planes (mse_avg)
	Frames int     `json:"frames"`
}

// QualitySample picks the windows MeasureQuality compares: up to
// QualityWindows windows of QualityWindowLength near evenly spread times,
// each kept inside the one chunk that holds it, so that only a few chunk
// sources are needed (and no whole source). A window opens on the frame
// after a keyframe of the renditions' grid (chunk start + k *
// DefaultSegmentSeconds, which a source's keyframes usually share): the
// seeks into the chunk and the renditions then land on a keyframe just
// before it, where a window anywhere else makes every input decode up to
// a GOP of frames only to drop them (a third of the measurement's cost);
// a window that would overlap the one before it in a short chunk keeps
// its own place instead.
// It starts half a frame before that frame's time, so that an accurate
// seek in the chunk and in the rendition (whose frame times differ by
// container rounding) selects the same frames. Chunks must be in order
// with Start and Duration set.
func QualitySample(chunks []Chunk, fps float64) []QualityWindow {
	if len(chunks) == 0 || fps <= 0 {
		return nil
	}
	last := chunks[len(chunks)-1]
	total := last.Start + last.Duration
	if total <= 0 {
		return nil
	}
	win, seg := QualityWindowLength(total, fps), DefaultSegmentSeconds
	k := max(1, min(QualityWindows, int(total/win)))
	var out []QualityWindow
	for i := range k {
		center := (float64(i) + 0.5) * total / float64(k)
		c := chunks[len(chunks)-1]
		for _, x := range chunks {
			if center < x.Start+x.Duration {
				c = x
				break
			}
		}
		w := QualityWindow{Index: len(out), Chunk: c.Index, Seconds: win}
		local := math.Max(0, math.Min(center-c.Start-win/2, c.Duration-win))
		if room := c.Duration - win - 1.5/fps; room < 0 {
			w.Seconds = c.Duration + 1 // all of the chunk; the filters stop at its end
		} else {
			key := math.Round(math.Min(local, room)/seg) * seg
			for key > room+1e-9 {
				key -= seg
			}
			w.SourceAt = (math.Ceil(key*fps-1e-6) + 0.5) / fps // the frame after the forced keyframe
		}
		if p := len(out) - 1; p >= 0 && out[p].Chunk == w.Chunk && w.SourceAt < out[p].SourceAt+out[p].Seconds {
			// A short chunk has too few keyframes for its windows: this
			// one goes where it would have been, and pays for the seek.
			if f := math.Round(local * fps); f > 0 {
				w.SourceAt = (f - 0.5) / fps
			}
			if w.SourceAt == out[p].SourceAt {
				continue
			}
		}
		w.At = c.Start + w.SourceAt
		out = append(out, w)
	}
	return out
}

// QualityWindowLength is how long each window is on a video of total
// seconds at fps: a QualityWindows-th of QualityShare of it, at least
// QualityMinFrames frames and at most QualityWindowSeconds.
func QualityWindowLength(total, fps float64) float64 {
	return math.Min(QualityWindowSeconds, math.Max(total*QualityShare/QualityWindows, QualityMinFrames/fps))
}

// MeasureQuality compares each rendition (its progressive MP4, mp4s[i])
// with the source on the sample windows (QualitySample): MeasureWindows,
// then QualityReport.
func (t *Transcoder) MeasureQuality(ctx context.Context, windows []QualityWindow, ref Reference, fps float64, rs []Rendition, mp4s []string, workDir string) ([]Quality, error) {
	if fps <= 0 || len(windows) == 0 {
		return nil, fmt.Errorf("quality: %d windows at %g fps", len(windows), fps)
	}
	scores, err := t.MeasureWindows(ctx, windows, ref, rs, mp4s, workDir)
	if err != nil {
		return nil, err
	}
	return QualityReport(scores, fps, rs, mp4s)
}

// MeasureWindows scores each rendition (videos[i]: its packaged MP4, or a
// chunk's encode of it) against the source on windows, with ffmpeg's ssim
// and psnr filters: one ffmpeg run per window decodes the chunk of the
// source once and every rendition. The source is scaled down to each
// rendition's size with the scaler the encoder used (rotation and, for the
// SDR rungs of an HDR source, tone mapping applied the same way: ref), so
// the score measures what the encoder lost, not what downscaling did: a
// 240p rung is not marked down for being 240p, and a rung starved of
// bitrate scores lower than a well-fed one of the same size. workDir holds
// the per-frame statistics files.
func (t *Transcoder) MeasureWindows(ctx context.Context, windows []QualityWindow, ref Reference, rs []Rendition, videos []string, workDir string) ([]WindowScore, error) {
	if len(rs) == 0 || len(videos) != len(rs) {
		return nil, fmt.Errorf("quality: %d renditions, %d files", len(rs), len(videos))
	}
	if !safeFilterPath.MatchString(workDir) {
		// The stats file names go inside a filter graph; a path needing
		// escapes is not worth the risk.
		d, err := os.MkdirTemp("", "gosty-quality-")
		if err != nil {
			return nil, fmt.Errorf("quality: %w", err)
		}
		defer os.RemoveAll(d)
		workDir = d
	}
	workDir, err := filepath.Abs(workDir)
	if err != nil || !safeFilterPath.MatchString(workDir) {
		return nil, fmt.Errorf("quality: unusable work dir %q", workDir)
	}
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return nil, fmt.Errorf("quality: %w", err)
	}
	out := make([]WindowScore, len(windows))
	for w, win := range windows {
		if out[w], err = t.measureWindow(ctx, win, ref, rs, videos, filepath.Join(workDir, fmt.Sprint(w))); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// measureWindow is one window's ffmpeg run (MeasureWindows).
func (t *Transcoder) measureWindow(ctx context.Context, win QualityWindow, ref Reference, rs []Rendition, videos []string, stats string) (WindowScore, error) {
	if win.Source == "" || win.Seconds <= 0 {
		return WindowScore{}, fmt.Errorf("quality: window %d has no source", win.Index)
	}
	n := len(rs)
	var fc strings.Builder
	fc.WriteString("[0:v:0]setpts=PTS-STARTPTS,")
	if r := rotationFilter(ref.Rotation); r != "" {
		fc.WriteString(r + ",")
	}
	split, err := rangeSplit(ref.ToneMap, rs, "ref")
	if err != nil {
		return WindowScore{}, fmt.Errorf("quality: %w", err)
	}
	fc.WriteString(split)
	args := ffmpegBase()
	args = append(args, "-noautorotate", "-ss", fmtSec(win.SourceAt), "-t", fmtSec(win.Seconds),
		"-protocol_whitelist", "file", "-i", inputURL(win.Source))
	ssimLogs := make([]string, n)
	psnrLogs := make([]string, n)
	for i, r := range rs {
		args = append(args, "-ss", fmtSec(win.At), "-t", fmtSec(win.Seconds), "-protocol_whitelist", "file", "-i", inputURL(videos[i]))
		ssimLogs[i] = fmt.Sprintf("%s-ssim-%d.log", stats, i)
		psnrLogs[i] = fmt.Sprintf("%s-psnr-%d.log", stats, i)
		fmt.Fprintf(&fc, ";[ref%d]scale=%d:%d:flags=bicubic,setsar=1,format=yuv420p,split[ra%d][rb%d]", i, r.Width, r.Height, i, i)
		fmt.Fprintf(&fc, ";[%d:v:0]setpts=PTS-STARTPTS,setsar=1,format=yuv420p[d%d]", i+1, i)
		fmt.Fprintf(&fc, ";[d%d][ra%d]ssim=stats_file=%s:shortest=1[x%d]", i, i, ssimLogs[i], i)
		fmt.Fprintf(&fc, ";[x%d][rb%d]psnr=stats_file=%s:shortest=1[q%d]", i, i, psnrLogs[i], i)
	}
	args = append(args, "-filter_complex", fc.String())
	for i := range n {
		args = append(args, "-map", fmt.Sprintf("[q%d]", i), "-f", "null", "-")
	}
	access := confine.Policy{Read: append([]string{win.Source}, videos...), Write: []string{filepath.Dir(stats)}}
	if err := t.run(ctx, encodeDeadline(win.Seconds*float64(n)), t.ffmpeg, args, nil, access); err != nil {
		return WindowScore{}, fmt.Errorf("quality window at %.2fs: %w", win.At, err)
	}
	score := WindowScore{Window: win.Index, Renditions: make([]ScoreSum, n)}
	for i := range n {
		ss, err := readStats(ssimLogs[i], ssimAllRe)
		if err != nil {
			return WindowScore{}, fmt.Errorf("quality %s: %w", rs[i].Name, err)
		}
		ms, err := readStats(psnrLogs[i], mseAvgRe)
		if err != nil {
			return WindowScore{}, fmt.Errorf("quality %s: %w", rs[i].Name, err)
		}
		if len(ss) != len(ms) {
			return WindowScore{}, fmt.Errorf("quality %s: %d ssim frames, %d psnr frames", rs[i].Name, len(ss), len(ms))
		}
		sum := &score.Renditions[i]
		for k := range ss {
			sum.SSIM += ss[k]
			sum.MSE += ms[k]
		}
		sum.Frames = len(ss)
	}
	return score, nil
}

// QualityReport adds up the windows' scores into each rendition's report,
// with its whole frame count and rate as encoded read from its packaged
// MP4 (mp4s[i]).
func QualityReport(scores []WindowScore, fps float64, rs []Rendition, mp4s []string) ([]Quality, error) {
	if fps <= 0 || len(scores) == 0 || len(mp4s) != len(rs) {
		return nil, fmt.Errorf("quality: %d window scores, %d renditions, %d files at %g fps", len(scores), len(rs), len(mp4s), fps)
	}
	out := make([]Quality, len(rs))
	for i := range rs {
		f, size, err := mp4VideoSamples(mp4s[i])
		if err != nil {
			return nil, fmt.Errorf("quality %s: %w", rs[i].Name, err)
		}
		q := &out[i]
		q.Frames = f
		if f > 0 {
			q.Bitrate = int64(math.Round(float64(size) * 8 * fps / float64(f)))
		}
		var ssim, mse float64
		for _, s := range scores {
			if len(s.Renditions) != len(rs) {
				return nil, fmt.Errorf("quality: window %d scored %d renditions, not %d", s.Window, len(s.Renditions), len(rs))
			}
			ssim += s.Renditions[i].SSIM
			mse += s.Renditions[i].MSE
			q.SampledFrames += s.Renditions[i].Frames
		}
		if q.SampledFrames == 0 {
			return nil, fmt.Errorf("quality %s: no frames compared", rs[i].Name)
		}
		q.SampledSeconds = round3(float64(q.SampledFrames) / fps)
		q.SSIM = round4(ssim / float64(q.SampledFrames))
		mse /= float64(q.SampledFrames)
		q.PSNR = MaxPSNR
		if mse > 0 {
			q.PSNR = round3(math.Min(MaxPSNR, 10*math.Log10(255*255/mse)))
		}
	}
	return out, nil
}

var (
	safeFilterPath = regexp.MustCompile(`^[A-Za-z0-9/_.-]+$`)
	ssimAllRe      = regexp.MustCompile(`\bAll:([0-9.]+)`)
	mseAvgRe       = regexp.MustCompile(`\bmse_avg:([0-9.]+)`)
)

// readStats reads one number per line (frame) from an ssim or psnr
// stats_file.
func readStats(path string, re *regexp.Regexp) ([]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := re.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%s: bad value in %q", filepath.Base(path), sc.Text())
		}
		out = append(out, v)
	}
	return out, sc.Err()
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }
func round4(f float64) float64 { return math.Round(f*10000) / 10000 }
