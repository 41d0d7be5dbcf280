package transcoder

import (
	"archive/tar"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Thumbnails. The encode of a chunk already decodes every frame, so its
// filter graph sends one more branch of those frames (rotated like the
// renditions) to the storyboard: on the job's timeline, the frame shown at
// each multiple of the interval (the last frame at or before k*interval),
// which in a chunk [start, start+duration) are exactly the k with k*interval
// in that range, so the grid is continuous across chunks and no frame is
// taken twice. The chunk holding the poster time sends one larger frame too.
// Both are written as JPEGs and bundled into one small tar per chunk
// (ThumbsFile); packaging assembles the sprite sheets, the WebVTT track and
// the poster from the bundles (storyboard.go).

// ThumbsFile is the bundle EncodeChunk writes into its outDir when
// EncodeSettings.Thumbs asks for thumbnails: a tar of "t-<k>.jpg" (k the
// frame's index on the job's storyboard grid) and, from the chunk holding
// the poster time, "poster.jpg".
const ThumbsFile = "thumbs.tar"

// Storyboard sizes.
const (
	ThumbMaxSide       = 160  // a storyboard frame's longer side, pixels
	PosterMaxSide      = 1280 // the poster's longer side at most (never above the top rendition)
	StoryboardMax      = 600  // storyboard frames per job at most
	StoryboardInterval = 2.0  // seconds between frames, for media up to StoryboardMax*2 s
)

// ThumbSettings ask EncodeChunk for storyboard frames and the poster. The
// zero value asks for none.
type ThumbSettings struct {
	Interval float64 // seconds between storyboard frames on the job's timeline; 0 = no thumbnails
	Width    int     // storyboard frame size (even)
	Height   int
	// Poster is the job time of the poster frame; the chunk that holds it
	// writes poster.jpg at PosterWidth x PosterHeight.
	Poster       float64
	PosterWidth  int
	PosterHeight int
	// Range is the source's dynamic range: HDR frames are tone-mapped to
	// SDR for the JPEGs whatever the ladder does.
	Range string
}

// StoryboardIntervalFor is the storyboard interval for media of duration
// seconds: StoryboardInterval, or longer (whole seconds) so that a job
// never has more than StoryboardMax frames (a 24 h source: 144 s).
func StoryboardIntervalFor(duration float64) float64 {
	if duration <= StoryboardInterval*StoryboardMax {
		return StoryboardInterval
	}
	return math.Ceil(duration / StoryboardMax)
}

// PosterTime is where the poster is taken: a tenth into the media, past
// fades from black and titles of most clips.
func PosterTime(duration float64) float64 { return max(duration, 0) / 10 }

// fitSize scales w x h (display size) to fit a side x side box without
// growing it, to even sizes of at least 2.
func fitSize(w, h, side int) (int, int) {
	if w <= 0 || h <= 0 {
		return 0, 0
	}
	f := math.Min(1, float64(side)/float64(max(w, h)))
	even := func(v float64) int { return max(2, int(math.Round(v/2))*2) }
	return even(float64(w) * f), even(float64(h) * f)
}

// ThumbSettingsFor fills ThumbSettings for a job whose video lasts
// duration seconds and whose top rendition is w x h (the display size,
// rotation applied), with source dynamic range rng.
func ThumbSettingsFor(duration float64, w, h int, rng string) ThumbSettings {
	s := ThumbSettings{Interval: StoryboardIntervalFor(duration), Poster: PosterTime(duration), Range: rng}
	s.Width, s.Height = fitSize(w, h, ThumbMaxSide)
	s.PosterWidth, s.PosterHeight = fitSize(w, h, PosterMaxSide)
	if s.Width == 0 {
		return ThumbSettings{}
	}
	return s
}

// StoryboardCount is how many storyboard frames media of duration seconds
// has at interval: one per grid point k*interval before the end.
func StoryboardCount(duration, interval float64) int {
	if duration <= 0 || interval <= 0 {
		return 0
	}
	return int(math.Ceil(duration/interval - 1e-9))
}

// thumbBranch is what EncodeChunk adds for thumbnails: the filter graph
// with two more branches of the decoded frames (the graph's input [0:v] is
// split before the ladder's own chain), the output arguments that write
// them into dir, and bundle, which tars what they wrote into ThumbsFile.
// ok is false when s asks for none, or when the ladder's graph does not
// read [0:v] first (then the chunk has no thumbnails, and says so in the
// log, rather than failing its encode: they are an extra).
type thumbBranch struct {
	filter string
	args   []string
	dir    string
	out    string
}

func (t *Transcoder) newThumbBranch(filter string, c Chunk, s EncodeSettings, outDir string) (thumbBranch, bool, error) {
	ts := s.Thumbs
	if ts.Interval <= 0 || ts.Width <= 0 || ts.Height <= 0 {
		return thumbBranch{}, false, nil
	}
	rest, ok := strings.CutPrefix(filter, "[0:v]")
	if !ok {
		t.log.Warn("no thumbnails: the ladder's filter graph does not start at [0:v]", "chunk", c.Index, "graph", filter[:min(len(filter), 60)])
		return thumbBranch{}, false, nil
	}
	b := thumbBranch{dir: filepath.Join(outDir, "thumbs"), out: filepath.Join(outDir, ThumbsFile)}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return thumbBranch{}, false, err
	}
	// The frames after rotation; HDR tone-mapped at the small size.
	post := func(w, h int) string {
		f := ""
		if r := rotationFilter(s.Rotation); r != "" {
			f += r + ","
		}
		f += fmt.Sprintf("scale=%d:%d:flags=bicubic,setsar=1", w, h)
		if tm := toneMapFilter(ts.Range); tm != "" {
			f += "," + tm
		}
		return f + ",format=yuvj420p"
	}
	poster := ts.PosterWidth > 0 && ts.PosterHeight > 0 && ts.Poster >= c.Start &&
		(ts.Poster < c.Start+c.Duration || c.Duration <= 0)
	n := 2
	if poster {
		n = 3
	}
	var fc strings.Builder
	fmt.Fprintf(&fc, "[0:v]split=%d[tl][tb]", n)
	if poster {
		fc.WriteString("[tp]")
	}
	// Shifted to the job's timeline, the fps filter (rounding up) emits
	// at tick k the last frame at or before k*interval, for every k with
	// k*interval in [start, start+duration). The frame's pts becomes k in
	// microseconds (settb, setpts), which -frame_pts writes into its name:
	// on the job's timeline the branch would lead ffmpeg's progress (the
	// latest time of any output) far past the chunk.
	iv := fmtSec(ts.Interval)
	fmt.Fprintf(&fc, ";[tb]setpts=PTS+%s/TB,fps=fps=1/%s:round=up,settb=1/1000000,setpts=round(PTS/(%s*1000000)),%s[thumbs]",
		fmtSec(c.Start), iv, iv, post(ts.Width, ts.Height))
	b.args = []string{"-map", "[thumbs]", "-an", "-sn", "-dn", "-fps_mode", "passthrough", "-enc_time_base", "1/1000000",
		"-frame_pts", "1", "-c:v", "mjpeg", "-q:v", "5", "-f", "image2", "-y", filepath.Join(b.dir, "t-%d.jpg")}
	if poster {
		at := max(0, ts.Poster-c.Start)
		if c.Duration > 0 && s.FrameRate > 0 {
			at = min(at, max(0, c.Duration-1/s.FrameRate))
		}
		fmt.Fprintf(&fc, ";[tp]trim=start=%s,trim=end_frame=1,%s[poster]", fmtSec(at), post(ts.PosterWidth, ts.PosterHeight))
		b.args = append(b.args, "-map", "[poster]", "-an", "-sn", "-dn", "-fps_mode", "passthrough",
			"-frames:v", "1", "-update", "1", "-c:v", "mjpeg", "-q:v", "3", "-f", "image2", "-y", filepath.Join(b.dir, "poster.jpg"))
	}
	fc.WriteString(";[tl]")
	fc.WriteString(rest)
	b.filter = fc.String()
	return b, true, nil
}

// bundle tars the chunk's thumbnails (in grid order, the poster last) into
// ThumbsFile and removes the loose files.
func (b thumbBranch) bundle() error {
	defer os.RemoveAll(b.dir)
	ents, err := os.ReadDir(b.dir)
	if err != nil {
		return fmt.Errorf("thumbnails: %w", err)
	}
	type item struct {
		name string
		k    int
	}
	var items []item
	for _, e := range ents {
		name := e.Name()
		if name == "poster.jpg" {
			items = append(items, item{name, math.MaxInt})
			continue
		}
		s, ok := strings.CutPrefix(name, "t-")
		if s, ok2 := strings.CutSuffix(s, ".jpg"); ok && ok2 {
			if k, err := strconv.Atoi(s); err == nil && k >= 0 {
				items = append(items, item{name, k})
			}
		}
	}
	// A chunk shorter than the interval may hold no grid point: its
	// bundle is empty, which still says the chunk was asked for some.
	slices.SortFunc(items, func(a, b item) int { return a.k - b.k })
	f, err := os.Create(b.out + ".part")
	if err != nil {
		return fmt.Errorf("thumbnails: %w", err)
	}
	tw := tar.NewWriter(f)
	for _, it := range items {
		if err := addTarFile(tw, filepath.Join(b.dir, it.name), it.name); err != nil {
			f.Close()
			os.Remove(f.Name())
			return fmt.Errorf("thumbnails: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("thumbnails: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("thumbnails: %w", err)
	}
	return os.Rename(b.out+".part", b.out)
}

func addTarFile(tw *tar.Writer, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	// No times, owners or modes from the disk: the same frames make the
	// same bytes, hence the same blob.
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: st.Size(), Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}
