package transcoder

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Published storyboard files, relative to the package's outDir.
const (
	PosterFile     = "poster.jpg"
	StoryboardFile = "storyboard/storyboard.vtt"
	// SpriteColumns x SpriteRows frames per sprite sheet.
	SpriteColumns = 10
	SpriteRows    = 10
)

// Bounds on what a thumbnail bundle may hold (they are our own, but a
// packager reads them from other nodes).
const (
	maxThumbEntry = 8 << 20
	maxThumbSide  = 4096
)

// StoryboardInput is what WriteStoryboard assembles: every chunk's
// thumbnail bundle (ThumbsFile) in chunk order, the interval they were
// taken at and the video's duration.
type StoryboardInput struct {
	Bundles  []string // "" for a chunk encoded without thumbnails
	Interval float64
	Duration float64
}

// StoryboardResult names what WriteStoryboard wrote, relative to outDir
// and slash-separated; empty names were not written.
type StoryboardResult struct {
	Poster     string
	Storyboard string
	Files      []string
}

// WriteStoryboard assembles the sprite sheets (storyboard/sprite-NNN.jpg,
// SpriteColumns x SpriteRows frames each), the WebVTT thumbnails track
// (StoryboardFile: one cue per interval, "sprite-NNN.jpg#xywh=x,y,w,h")
// and the poster (PosterFile) into outDir. The storyboard is written only
// when every chunk has a bundle (jobs encoded before thumbnails existed
// have none): a grid point no chunk had a frame for (a gap in the source)
// shows the nearest earlier frame. The poster is the bundle's, or else the
// storyboard frame nearest to PosterTime.
func WriteStoryboard(in StoryboardInput, outDir string) (StoryboardResult, error) {
	var res StoryboardResult
	n := StoryboardCount(in.Duration, in.Interval)
	if n == 0 || len(in.Bundles) == 0 {
		return res, nil
	}
	frames := make([][]byte, n)
	var poster []byte
	complete := true
	for i, p := range in.Bundles {
		if p == "" {
			complete = false
			continue
		}
		err := readBundle(p, func(name string, b []byte) {
			if name == "poster.jpg" {
				if poster == nil {
					poster = b
				}
				return
			}
			s, _ := strings.CutSuffix(strings.TrimPrefix(name, "t-"), ".jpg")
			if k, err := strconv.Atoi(s); err == nil && k >= 0 && k < n && frames[k] == nil {
				frames[k] = b
			}
		})
		if err != nil {
			return res, fmt.Errorf("storyboard: chunk %d: %w", i, err)
		}
	}
	if complete {
		if err := writeSprites(frames, in, outDir, &res); err != nil {
			return StoryboardResult{}, err
		}
	}
	if poster == nil && complete {
		k := min(n-1, int(PosterTime(in.Duration)/in.Interval))
		poster = nearestFrame(frames, k)
	}
	if poster != nil {
		if err := writeFileAtomic(filepath.Join(outDir, PosterFile), poster); err != nil {
			return StoryboardResult{}, fmt.Errorf("storyboard: %w", err)
		}
		res.Poster = PosterFile
		res.Files = append(res.Files, PosterFile)
	}
	return res, nil
}

// nearestFrame is frame k or, when no chunk had one, the nearest earlier
// one (the nearest later one at the start).
func nearestFrame(frames [][]byte, k int) []byte {
	for i := k; i >= 0; i-- {
		if frames[i] != nil {
			return frames[i]
		}
	}
	for i := k + 1; i < len(frames); i++ {
		if frames[i] != nil {
			return frames[i]
		}
	}
	return nil
}

func writeSprites(frames [][]byte, in StoryboardInput, outDir string, res *StoryboardResult) error {
	n := len(frames)
	if nearestFrame(frames, 0) == nil {
		return nil // no chunk had a frame: no storyboard
	}
	dir := filepath.Join(outDir, filepath.FromSlash(filepath.Dir(StoryboardFile)))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("storyboard: %w", err)
	}
	var w, h int // every tile has the first frame's size
	var vtt strings.Builder
	vtt.WriteString("WEBVTT\n")
	per := SpriteColumns * SpriteRows
	for sheet := 0; sheet*per < n; sheet++ {
		first, count := sheet*per, min(per, n-sheet*per)
		var img *image.RGBA
		name := fmt.Sprintf("sprite-%03d.jpg", sheet)
		for i := range count {
			k := first + i
			src, err := decodeThumb(nearestFrame(frames, k))
			if err != nil {
				return fmt.Errorf("storyboard: frame %d: %w", k, err)
			}
			if w == 0 {
				w, h = src.Bounds().Dx(), src.Bounds().Dy()
			}
			if img == nil {
				cols := min(SpriteColumns, count)
				rows := (count + SpriteColumns - 1) / SpriteColumns
				img = image.NewRGBA(image.Rect(0, 0, cols*w, rows*h))
			}
			x, y := (i%SpriteColumns)*w, (i/SpriteColumns)*h
			draw.Draw(img, image.Rect(x, y, x+w, y+h), src, src.Bounds().Min, draw.Src)
			start := float64(k) * in.Interval
			end := math.Min(float64(k+1)*in.Interval, in.Duration)
			fmt.Fprintf(&vtt, "\n%s --> %s\n%s#xywh=%d,%d,%d,%d\n", storyboardTime(start), storyboardTime(end), name, x, y, w, h)
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 75}); err != nil {
			return fmt.Errorf("storyboard: %s: %w", name, err)
		}
		rel := filepath.ToSlash(filepath.Join(filepath.Dir(StoryboardFile), name))
		if err := writeFileAtomic(filepath.Join(outDir, filepath.FromSlash(rel)), buf.Bytes()); err != nil {
			return fmt.Errorf("storyboard: %w", err)
		}
		res.Files = append(res.Files, rel)
	}
	if err := writeFileAtomic(filepath.Join(outDir, filepath.FromSlash(StoryboardFile)), []byte(vtt.String())); err != nil {
		return fmt.Errorf("storyboard: %w", err)
	}
	res.Storyboard = StoryboardFile
	res.Files = append(res.Files, StoryboardFile)
	return nil
}

// decodeThumb decodes one storyboard JPEG, refusing outsized ones before
// their pixels are allocated.
func decodeThumb(b []byte) (image.Image, error) {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > maxThumbSide || cfg.Height > maxThumbSide {
		return nil, fmt.Errorf("thumbnail is %dx%d", cfg.Width, cfg.Height)
	}
	return jpeg.Decode(bytes.NewReader(b))
}

// readBundle calls fn with every regular file of a thumbnail bundle.
func readBundle(path string, fn func(name string, b []byte)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Size > maxThumbEntry || hdr.Size < 0 {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		fn(hdr.Name, b)
	}
}

// storyboardTime formats seconds as WebVTT's HH:MM:SS.mmm.
func storyboardTime(sec float64) string {
	ms := int64(math.Round(max(sec, 0) * 1000))
	return fmt.Sprintf("%02d:%02d:%02d.%03d", ms/3600000, ms/60000%60, ms/1000%60, ms%1000)
}
