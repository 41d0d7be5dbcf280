package node

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// genMultiAudioClip makes a 2 s 160x90 source with English stereo, French
// stereo (titled, the default) and English 5.1 audio streams.
func genMultiAudioClip(t *testing.T, path string) string {
	return genClip(t, path,
		"-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=2",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=2",
		"-f", "lavfi", "-i", "sine=frequency=660:duration=2",
		"-f", "lavfi", "-i", "sine=frequency=220:duration=2,aformat=channel_layouts=5.1",
		"-map", "0", "-map", "1", "-map", "2", "-map", "3",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac:a:0", "2", "-ac:a:1", "2",
		"-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fra", "-metadata:s:a:1", "title=Français",
		"-metadata:s:a:2", "language=eng",
		"-disposition:a:0", "0", "-disposition:a:1", "default", "-disposition:a:2", "0")
}

// audioOf lists "language/channels" of every audio stream a URL serves.
func audioOf(t *testing.T, url string) string {
	t.Helper()
	b, err := exec.Command("ffprobe", "-v", "error", "-protocol_whitelist", "http,tcp", "-select_streams", "a",
		"-show_entries", "stream=channels:stream_tags=language", "-of", "json", url).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", url, err)
	}
	var r struct {
		Streams []struct {
			Channels int               `json:"channels"`
			Tags     map[string]string `json:"tags"`
		}
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range r.Streams {
		out = append(out, s.Tags["language"]+"/"+strings.Repeat("#", s.Channels))
	}
	return strings.Join(out, " ")
}

// TestEveryAudioTrack submits a source with three audio streams to a
// one-node cluster: by default every stream is published (the 5.1 one also
// as 5.1) in the HLS master, the MPD and the MP4; {"audio":[1]} goes
// through the log to the audio task and publishes the second stream alone;
// an ordinal the source lacks is refused at upload with a 400 naming it.
func TestEveryAudioTrack(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	dir := t.TempDir()
	n := startNode(t, filepath.Join(dir, "data"), nil)
	src := genMultiAudioClip(t, filepath.Join(dir, "multi.mkv"))

	code, body := upload(t, n.base, src, `{"audio":[3]}`)
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil || code != http.StatusBadRequest ||
		!strings.Contains(e.Error.Message, "audio stream 3 does not exist: the source has 3 audio streams (0 to 2)") {
		t.Errorf("missing audio stream: %d %s", code, body)
	}

	all := submit(t, n.base, src, `{"renditions":["90p@150k"]}`)
	second := submit(t, n.base, src, `{"renditions":["90p@150k"],"audio":[1]}`)
	all = waitJob(t, n.base, all.ID, 2*time.Minute)
	second = waitJob(t, n.base, second.ID, 2*time.Minute)
	for _, j := range []apiJob{all, second} {
		if j.State != "done" {
			t.Fatalf("job %s: %s (%s)", j.ID, j.State, j.Error)
		}
	}

	const want = "fra/## eng/## eng/## eng/######" // the default first, the 5.1 stream twice
	if got := audioOf(t, n.base+all.Outputs.MP4["90p"]); got != want {
		t.Errorf("MP4 audio %q, want %q", got, want)
	}
	if got := audioOf(t, n.base+second.Outputs.MP4["90p"]); got != "fra/##" {
		t.Errorf(`MP4 of {"audio":[1]}: audio %q, want "fra/##"`, got)
	}
	master := string(fetch(t, n.base+all.Outputs.HLS))
	media := regexp.MustCompile(`#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="([^"]*)",LANGUAGE="([a-z]*)",DEFAULT=(YES|NO),AUTOSELECT=YES,CHANNELS="([0-9])"`).FindAllStringSubmatch(master, -1)
	var got []string
	for _, m := range media {
		got = append(got, strings.Join(m[1:], "/"))
	}
	if g := strings.Join(got, " "); g != "Français/fr/YES/2 English/en/NO/2 English (2)/en/NO/2 English 5.1/en/NO/6" {
		t.Errorf("HLS audio renditions %q:\n%s", g, master)
	}
	mpd := string(fetch(t, n.base+all.Outputs.DASH))
	if sets := regexp.MustCompile(`contentType="audio"[^>]*lang="([a-z]+)"`).FindAllStringSubmatch(mpd, -1); len(sets) != 4 || sets[0][1] != "fr" {
		t.Errorf("DASH audio sets %v:\n%s", sets, mpd)
	}
}
