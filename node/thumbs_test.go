package node

import (
	"bytes"
	"encoding/json"
	"image/jpeg"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPosterAndStoryboard runs a job through the real pipeline (split in
// chunks, encodes that write thumbnails, package) and fetches what a
// player would: outputs.poster is a JPEG at the rung's size, and
// outputs.storyboard a WebVTT track with one cue per 2 s whose #xywh
// regions lie inside sprites that the node serves. Under signed playback
// the track's sprite URLs carry the signature (and a sprite without it is
// refused).
func TestPosterAndStoryboard(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	dir := t.TempDir()
	src := genClip(t, filepath.Join(dir, "clip.mp4"), "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=15:duration=7",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-pix_fmt", "yuv420p")
	for _, signed := range []bool{false, true} {
		name := map[bool]string{false: "public", true: "signed"}[signed]
		t.Run(name, func(t *testing.T) {
			n := startNode(t, filepath.Join(dir, name), func(c *Config) {
				if signed {
					c.ClusterKeyFile = writeSecret(t, dir, "cluster.key", "thumbs-cluster-key\n")
					c.Playback, c.PlaybackTTL = PlaybackSigned, time.Hour
				}
			})
			j := submit(t, n.base, src, `{"renditions":["90p@100k"],"chunk_seconds":2,"preset":"ultrafast"}`)
			j = waitJob(t, n.base, j.ID, 2*time.Minute)
			if j.State != "done" {
				t.Fatalf("job %s: %s (%s)", j.ID, j.State, j.Error)
			}
			if len(j.Chunks) < 2 {
				t.Fatalf("want several chunks, got %d", len(j.Chunks))
			}
			checkStoryboard(t, n.base, j.ID, j.Source.Video.Duration, signed)
		})
	}
}

func checkStoryboard(t *testing.T, base, id string, duration float64, signed bool) {
	t.Helper()
	var v struct {
		Outputs struct {
			Poster     string `json:"poster"`
			Storyboard string `json:"storyboard"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(fetch(t, base+"/api/v1/jobs/"+id), &v); err != nil {
		t.Fatal(err)
	}
	if v.Outputs.Poster == "" || v.Outputs.Storyboard == "" {
		t.Fatalf("outputs lack poster or storyboard: %+v", v.Outputs)
	}
	if signed != strings.Contains(v.Outputs.Poster, "sig=") || signed != strings.Contains(v.Outputs.Storyboard, "sig=") {
		t.Errorf("signed %v, but the URLs are %q and %q", signed, v.Outputs.Poster, v.Outputs.Storyboard)
	}
	poster, err := jpeg.Decode(bytes.NewReader(fetch(t, base+v.Outputs.Poster)))
	if err != nil {
		t.Fatalf("poster: %v", err)
	}
	if b := poster.Bounds(); b.Dx() != 160 || b.Dy() != 90 {
		t.Errorf("poster is %dx%d, want 160x90", b.Dx(), b.Dy())
	}
	vtt := string(fetch(t, base+v.Outputs.Storyboard))
	cues := regexp.MustCompile(`(?m)^([0-9:.]+) --> ([0-9:.]+)\r?\n(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)\r?$`).FindAllStringSubmatch(vtt, -1)
	if !strings.HasPrefix(vtt, "WEBVTT") || len(cues) != int(math.Ceil(duration/2)) {
		t.Fatalf("storyboard for %.3f s has %d cues, want one per 2 s:\n%s", duration, len(cues), vtt)
	}
	track, _ := url.Parse(base + v.Outputs.Storyboard)
	sprites := map[string][2]int{}
	for i, c := range cues {
		if want := fmtCueTime(float64(2 * i)); c[1] != want {
			t.Errorf("cue %d starts at %s, want %s", i, c[1], want)
		}
		ref, _ := url.Parse(c[3])
		u := track.ResolveReference(ref)
		if signed != (u.Query().Get("sig") != "") {
			t.Errorf("cue %d: sprite URL %s (signed playback %v)", i, u, signed)
		}
		size, ok := sprites[u.String()]
		if !ok {
			img, err := jpeg.Decode(bytes.NewReader(fetch(t, u.String())))
			if err != nil {
				t.Fatalf("sprite %s: %v", u, err)
			}
			size = [2]int{img.Bounds().Dx(), img.Bounds().Dy()}
			sprites[u.String()] = size
			if signed {
				bare := *u
				bare.RawQuery = ""
				resp, err := http.Get(bare.String())
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("unsigned sprite %s: %s, want 403", bare.String(), resp.Status)
				}
			}
		}
		x, _ := strconv.Atoi(c[4])
		y, _ := strconv.Atoi(c[5])
		w, _ := strconv.Atoi(c[6])
		h, _ := strconv.Atoi(c[7])
		if w != 160 || h != 90 || x+w > size[0] || y+h > size[1] {
			t.Errorf("cue %d: xywh=%d,%d,%d,%d in a %dx%d sprite", i, x, y, w, h, size[0], size[1])
		}
	}
}

func fmtCueTime(s float64) string {
	ms := int(math.Round(s * 1000))
	return strconv.Itoa(100 + ms/3600000)[1:] + ":" + strconv.Itoa(100 + ms/60000%60)[1:] + ":" +
		strconv.Itoa(100 + ms/1000%60)[1:] + "." + strconv.Itoa(1000 + ms%1000)[1:]
}
