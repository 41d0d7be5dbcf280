package node

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

type liveJob struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Error string `json:"error"`
	Live  *struct {
		HLS      string  `json:"hls"`
		Ready    bool    `json:"ready"`
		Segments int     `json:"segments"`
		Seconds  float64 `json:"seconds"`
		Complete bool    `json:"complete"`
	} `json:"live"`
	Outputs struct {
		HLS string `json:"hls"`
	} `json:"outputs"`
	Chunks []struct{} `json:"chunks"`
}

func getLiveJob(t *testing.T, base, id string) liveJob {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/jobs/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var j liveJob
	if err := json.NewDecoder(resp.Body).Decode(&j); err != nil {
		t.Fatal(err)
	}
	return j
}

func httpGet(t *testing.T, u string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

var codecsAttr = regexp.MustCompile(`CODECS="([^"]*)"`)

// TestPlayWhileEncoding: a job with many short chunks on a one-slot node is
// playable as a growing HLS EVENT playlist while it still transcodes, and
// the same live URL gives the complete VOD playlist once it is done.
func TestPlayWhileEncoding(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	t.Run("public", func(t *testing.T) { playWhileEncoding(t, false) })
	// With signed playback every URI of a live playlist carries the
	// signature, and the redirect to the final playlist keeps it.
	t.Run("signed", func(t *testing.T) { playWhileEncoding(t, true) })
}

// sibling is the URL of the file name next to u, with u's query.
func sibling(t *testing.T, u, name string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	p.Path = p.Path[:strings.LastIndex(p.Path, "/")+1] + name
	return p.String()
}

func playWhileEncoding(t *testing.T, signed bool) {
	dir := t.TempDir()
	n := startNode(t, filepath.Join(dir, "data"), func(c *Config) {
		c.Slots = 1
		if signed {
			c.ClusterKeyFile = writeSecret(t, dir, "cluster.key", "live-cluster-key\n")
			c.Playback = PlaybackSigned
		}
	})
	const seconds = 20.0
	src := genClip(t, filepath.Join(dir, "src.mp4"), "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=20",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=20", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
		"-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")
	// A slow preset keeps the job transcoding long enough to watch it.
	j0 := submit(t, n.base, src, `{"chunk_seconds":2,"preset":"medium","renditions":["180p@300k","144p"]}`)
	start := time.Now()

	// Wait for live playback while the job is still transcoding.
	var j liveJob
	waitFor(t, 3*time.Minute, "live playback to be ready", func() bool {
		j = getLiveJob(t, n.base, j0.ID)
		if j.State == "done" || j.State == "failed" || j.State == "canceled" {
			t.Fatalf("job reached %s (%s) before live playback was seen", j.State, j.Error)
		}
		return j.Live != nil && j.Live.Ready
	})
	if j.State != "transcoding" && j.State != "packaging" {
		t.Fatalf("ready in state %s", j.State)
	}
	t.Logf("live ready after %.1fs: %d of %d chunks, %.2fs", time.Since(start).Seconds(), j.Live.Segments, len(j.Chunks), j.Live.Seconds)
	if j.Live.Segments < 1 || j.Live.Segments > len(j.Chunks) {
		t.Fatalf("live %+v with %d chunks", j.Live, len(j.Chunks))
	}
	master := n.base + j.Live.HLS
	code, body, h := httpGet(t, master)
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "application/vnd.apple.mpegurl") {
		t.Fatalf("live master: %d %s %s", code, h.Get("Content-Type"), body)
	}
	liveCodecs := codecsAttr.FindAllStringSubmatch(body, -1)
	if len(liveCodecs) != 2 || !strings.Contains(body, "TYPE=AUDIO") {
		t.Fatalf("live master without codecs or audio:\n%s", body)
	}
	if strings.Count(body, ",VIDEO-RANGE=SDR") != len(liveCodecs) {
		t.Errorf("live master does not state every variant's VIDEO-RANGE=SDR:\n%s", body)
	}
	mediaURL := sibling(t, master, "media_0.m3u8")
	audioURL := sibling(t, master, fmt.Sprintf("media_%d.m3u8", len(liveCodecs)))
	if signed {
		if !strings.Contains(master, "sig=") || strings.Count(body, "sig=") != 3 {
			t.Errorf("signed live master %s:\n%s", master, body)
		}
		unsigned := strings.Split(master, "?")[0]
		for _, u := range []string{unsigned, strings.Split(mediaURL, "?")[0], sibling(t, unsigned, "init-0.m4s"), sibling(t, unsigned, "seg-0-0.m4s")} {
			if code, b, _ := httpGet(t, u); code != http.StatusForbidden {
				t.Errorf("unsigned %s: %d %s", u, code, b)
			}
		}
	}

	// ffprobe reads the live master (all variants and the audio) and a
	// media playlist from their first segment.
	v := probeURL(t, master, "-live_start_index", "0", "-show_streams")
	var kinds []string
	starts := map[string]float64{}
	for _, s := range v["streams"].([]any) {
		m := s.(map[string]any)
		kind := fmt.Sprint(m["codec_type"])
		kinds = append(kinds, kind)
		st, _ := strconv.ParseFloat(fmt.Sprint(m["start_time"]), 64)
		starts[kind] = st
	}
	// Picture and sound start together, as in the final package.
	if d := math.Abs(starts["video"] - starts["audio"]); d > 0.05 {
		t.Errorf("live video starts at %.3fs, audio at %.3fs", starts["video"], starts["audio"])
	}
	t.Logf("live stream starts: %v", starts)
	if !slicesContain(kinds, "video") || !slicesContain(kinds, "audio") {
		t.Errorf("live master streams %v", kinds)
	}
	probeURL(t, mediaURL, "-live_start_index", "0", "-show_streams")

	code, first, _ := httpGet(t, mediaURL)
	if code != 200 || !strings.Contains(first, "#EXT-X-PLAYLIST-TYPE:EVENT\n") || strings.Contains(first, "ENDLIST") ||
		!strings.Contains(first, "#EXT-X-MAP:URI=") || !strings.Contains(first, "#EXT-X-INDEPENDENT-SEGMENTS") {
		t.Fatalf("live media playlist %d:\n%s", code, first)
	}
	if c := strings.Count(first, "#EXTINF"); c < 1 {
		t.Fatalf("no segments:\n%s", first)
	}
	if signed && strings.Count(first, "sig=") != strings.Count(first, "#EXTINF")+1 {
		t.Errorf("signed live media playlist with unsigned URIs:\n%s", first)
	}
	code, audio, _ := httpGet(t, audioURL)
	if code != 200 || !strings.Contains(audio, "#EXTINF") || strings.Contains(audio, "ENDLIST") {
		t.Fatalf("live audio playlist %d:\n%s", code, audio)
	}

	// ffmpeg decodes the segments listed so far without an error: the
	// snapshot is closed with ENDLIST so that ffmpeg stops at its end.
	decodeSnapshot(t, dir, "video", mediaURL, first)
	decodeSnapshot(t, dir, "audio", audioURL, audio)

	// The playlist grows in order: every later fetch extends the earlier.
	prev, grew := first, 0
	for {
		jj := getLiveJob(t, n.base, j0.ID)
		if jj.State != "transcoding" && jj.State != "packaging" {
			break
		}
		code, cur, _ := httpGet(t, mediaURL)
		if code != 200 {
			// the job may have finished between the two requests
			if jj = getLiveJob(t, n.base, j0.ID); jj.State == "done" {
				break
			}
			t.Fatalf("live media playlist: %d %s", code, cur)
		}
		if !strings.HasPrefix(cur, prev) {
			t.Fatalf("live playlist changed other than at its end:\nbefore:\n%s\nafter:\n%s", prev, cur)
		}
		if cur != prev {
			grew++
		}
		prev = cur
		time.Sleep(100 * time.Millisecond)
	}
	if grew == 0 {
		t.Errorf("the live playlist never grew while the job transcoded")
	}
	t.Logf("live playlist grew %d times; last had %d segments", grew, strings.Count(prev, "#EXTINF"))

	done := waitJob(t, n.base, j0.ID, 4*time.Minute)
	if done.State != "done" {
		t.Fatalf("job %s: %s", done.State, done.Error)
	}
	t.Logf("job done after %.1fs", time.Since(start).Seconds())
	j = getLiveJob(t, n.base, j0.ID)
	if j.Live == nil || !j.Live.Ready || !j.Live.Complete || j.Live.Segments != len(j.Chunks) {
		t.Errorf("done job live view %+v", j.Live)
	}
	// The same live URLs now lead to the final VOD playlists.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(mediaURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.Contains(loc, "/"+j.ID+"/files/media_0.m3u8") || signed != strings.Contains(loc, "sig=") {
		t.Errorf("live media URL after done: %d Location %q", resp.StatusCode, loc)
	}
	code, vod, _ := httpGet(t, mediaURL)
	if code != 200 || !strings.Contains(vod, "#EXT-X-ENDLIST") || !strings.Contains(vod, "#EXT-X-PLAYLIST-TYPE:VOD") {
		t.Fatalf("live media URL after done: %d\n%s", code, vod)
	}
	code, final, _ := httpGet(t, master)
	if code != 200 {
		t.Fatalf("live master after done: %d %s", code, final)
	}
	_, finalDirect, _ := httpGet(t, n.base+j.Outputs.HLS)
	// (Under signed playback the two URLs may carry different expiries.)
	unsign := regexp.MustCompile(`\?exp=[0-9]+&sig=[0-9a-f]+`)
	if unsign.ReplaceAllString(final, "") != unsign.ReplaceAllString(finalDirect, "") {
		t.Errorf("live master after done is not the final master")
	}
	finalCodecs := codecsAttr.FindAllStringSubmatch(final, -1)
	if len(finalCodecs) != len(liveCodecs) {
		t.Errorf("live master has %d variants, final %d", len(liveCodecs), len(finalCodecs))
	}
	for i := range min(len(finalCodecs), len(liveCodecs)) {
		if finalCodecs[i][1] != liveCodecs[i][1] {
			t.Errorf("variant %d: live CODECS %q, final %q", i, liveCodecs[i][1], finalCodecs[i][1])
		}
	}
	// The VOD through the live URLs lasts as long as the source, within
	// a frame or two.
	for _, c := range []struct {
		name, url string
		tol       float64
	}{{"video", mediaURL, 2.0 / 25}, {"audio", audioURL, 0.1}} {
		v := probeURL(t, c.url, "-show_format")
		d, _ := strconv.ParseFloat(fmt.Sprint(v["format"].(map[string]any)["duration"]), 64)
		_, pl, _ := httpGet(t, c.url)
		var listed float64
		for _, m := range regexp.MustCompile(`#EXTINF:([0-9.]+),`).FindAllStringSubmatch(pl, -1) {
			f, _ := strconv.ParseFloat(m[1], 64)
			listed += f
		}
		if math.Abs(d-seconds) > c.tol || math.Abs(listed-seconds) > c.tol {
			t.Errorf("VOD %s via the live URL: %.3fs decoded, %.3fs listed, source %.0fs", c.name, d, listed, seconds)
		}
	}
	// The live segments went with the transcoding.
	if code, _, _ := httpGet(t, sibling(t, master, "seg-0-0.m4s")); code != http.StatusNotFound {
		t.Errorf("live segment after done: %d", code)
	}
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// decodeSnapshot decodes what a live media playlist lists now.
func decodeSnapshot(t *testing.T, dir, name, playlistURL, body string) {
	t.Helper()
	base, err := url.Parse(playlistURL)
	if err != nil {
		t.Fatal(err)
	}
	abs := func(u string) string {
		r, err := base.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		return r.String()
	}
	var out strings.Builder
	for _, l := range strings.Split(strings.TrimRight(body, "\n"), "\n") {
		switch {
		case strings.HasPrefix(l, "#EXT-X-MAP:URI=\""):
			u := strings.TrimSuffix(strings.TrimPrefix(l, "#EXT-X-MAP:URI=\""), "\"")
			l = "#EXT-X-MAP:URI=\"" + abs(u) + "\""
		case l != "" && !strings.HasPrefix(l, "#"):
			l = abs(l)
		}
		out.WriteString(l + "\n")
	}
	out.WriteString("#EXT-X-ENDLIST\n")
	p := filepath.Join(dir, name+"-snapshot.m3u8")
	if err := os.WriteFile(p, []byte(out.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-xerror", "-protocol_whitelist", "file,http,tcp",
		"-i", p, "-f", "null", "-")
	b, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(b)) != "" {
		t.Fatalf("decode the live %s segments: %v\n%s\n%s", name, err, b, out.String())
	}
	// Every listed second decodes: the duration adds up.
	v := probeURL(t, p, "-show_format")
	d, _ := strconv.ParseFloat(fmt.Sprint(v["format"].(map[string]any)["duration"]), 64)
	var want float64
	for _, m := range regexp.MustCompile(`#EXTINF:([0-9.]+),`).FindAllStringSubmatch(body, -1) {
		f, _ := strconv.ParseFloat(m[1], 64)
		want += f
	}
	if math.Abs(d-want) > 0.15 {
		t.Errorf("live %s snapshot lasts %.3fs, playlist says %.3fs", name, d, want)
	}
}
