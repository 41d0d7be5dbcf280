package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// Loopback subnet 127.0.115.x: TestSubtitlesAckedWithSource on .1-.3.

// TestSubtitlesAckedWithSource: on three node processes with two copies
// of every source, an upload with a sidecar subtitle file is answered only
// once the nodes that hold the source's copy hold the subtitle track too
// (the job.submit entry names them), so losing the origin then loses no
// track. The CLI's --subtitles sends such files too.
func TestSubtitlesAckedWithSource(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes and ffmpeg")
	}
	c := e2e.New(t, e2e.Opts{Subnet: 115, First: 1, Size: 3, Fast: true},
		"--slots", "1", "--replicas", "2", "--preset", "ultrafast")
	c.StartAll(t, 3)
	c.Agree(t, []int{0, 1, 2}, 3, 3)
	src := nodetest.GenClip(t, filepath.Join(t.TempDir(), "clip.mp4"), "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=2",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p")
	video, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	form, contentType := nodetest.Form(t, src, "", [2]string{"clip.de.srt", "1\r\n00:00:00,500 --> 00:00:01,500\r\nHallo\r\n"})
	resp, err := http.Post(c.HTTP(0)+"/api/v1/jobs", contentType, form)
	if err != nil {
		t.Fatal(err)
	}
	// Checked the instant the answer arrives, before reading it.
	vtt := sha256Hex([]byte("WEBVTT\n\n00:00:00.500 --> 00:00:01.500\nHallo\n"))
	subHolders := othersHolding(c, 0, vtt)
	srcHolders := othersHolding(c, 0, sha256Hex(video))
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	if len(srcHolders) == 0 || !slices.Equal(subHolders, srcHolders) {
		t.Fatalf("answered with the source also on %v but the subtitle track on %v", srcHolders, subHolders)
	}
	var j struct{ ID string }
	json.Unmarshal(body, &j)
	t.Logf("job %s: source and subtitle track also on %v", j.ID, srcHolders)

	// The CLI sends --subtitles files with the upload; the finished job
	// lists the track among its outputs, served by any node.
	vttFile := filepath.Join(t.TempDir(), "extra.fr.vtt")
	os.WriteFile(vttFile, []byte("WEBVTT\n\n00:01.000 --> 00:01.800\nSalut\n"), 0o644)
	stdout, stderr, code := gosty(t, "submit", "--server", c.HTTP(1), "--wait", "--output", "json", "--subtitles", vttFile, src)
	if code != 0 {
		t.Fatalf("gosty submit: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var out struct {
		Jobs []struct {
			Outputs struct {
				Subtitles []struct{ URL, Language string }
			}
		}
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || len(out.Jobs) != 1 || len(out.Jobs[0].Outputs.Subtitles) != 1 ||
		out.Jobs[0].Outputs.Subtitles[0].Language != "fr" {
		t.Fatalf("gosty submit: %v %s", err, stdout)
	}
	sub := out.Jobs[0].Outputs.Subtitles[0].URL
	resp, err = http.Get(c.HTTP(2) + sub)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(got) != "WEBVTT\n\n00:00:01.000 --> 00:00:01.800\nSalut\n" {
		t.Errorf("GET %s from another node: %d %q", sub, resp.StatusCode, got)
	}
	if _, stderr, code := gosty(t, "submit", "--server", c.HTTP(1), "--subtitles", filepath.Join(t.TempDir(), "none.srt"), src); code != 2 {
		t.Errorf("a missing --subtitles file: exit %d, want 2 (%s)", code, stderr)
	}
}
