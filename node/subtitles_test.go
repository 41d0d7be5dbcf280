package node

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/node/nodetest"
)

// subtitleUpload posts a video with sidecar subtitle files (name,
// content) as multipart, sidecars first.
func subtitleUpload(t *testing.T, base, video string, sidecars [][2]string) (int, []byte) {
	t.Helper()
	buf, contentType := nodetest.Form(t, video, "", sidecars...)
	return doPost(t, base+"/api/v1/jobs", contentType, buf)
}

// TestSubtitlesThroughNode: a film with an SRT and a forced ASS stream,
// plus an uploaded German .srt, comes out with three subtitle tracks in
// the HLS master, the MPD and the job's outputs, served by the node.
func TestSubtitlesThroughNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	dir := t.TempDir()
	n := startNode(t, filepath.Join(dir, "data"), nil)
	srt := filepath.Join(dir, "in.srt")
	os.WriteFile(srt, []byte("1\n00:00:00,500 --> 00:00:01,500\nHello\n\n2\n00:00:02,500 --> 00:00:03,000\nAgain\n"), 0o644)
	vtt := filepath.Join(dir, "in.vtt")
	os.WriteFile(vtt, []byte("WEBVTT\n\n00:01.000 --> 00:02.000\nBonjour\n"), 0o644)
	src := genClip(t, filepath.Join(dir, "film.mkv"), "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=3",
		"-i", srt, "-i", vtt, "-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
		"-c:s:0", "srt", "-c:s:1", "ass", "-metadata:s:s:0", "language=eng", "-metadata:s:s:1", "language=fre",
		"-disposition:s:1", "forced")

	// A bad sidecar refuses the upload before anything is stored.
	code, body := subtitleUpload(t, n.base, src, [][2]string{{"film.de.srt", "not subtitles at all"}})
	var e apiError
	if json.Unmarshal(body, &e); code != http.StatusBadRequest || e.Error.Code != "invalid_request" || !strings.Contains(e.Error.Message, "film.de.srt") {
		t.Fatalf("bad sidecar: %d %s", code, body)
	}

	code, body = subtitleUpload(t, n.base, src, [][2]string{{"film.de.srt", "1\n00:00:02,000 --> 00:00:02,800\nHallo\n"}})
	if code != http.StatusCreated {
		t.Fatalf("upload: %d %s", code, body)
	}
	j := submitted(t, body)
	j = waitJob(t, n.base, j.ID, 2*time.Minute)
	if j.State != "done" {
		t.Fatalf("job %s: %s (%s)", j.ID, j.State, j.Error)
	}
	var view struct {
		Warnings []string `json:"warnings"`
		Source   struct {
			Subtitles []struct {
				Codec    string `json:"codec"`
				Language string `json:"language"`
				Forced   bool   `json:"forced"`
			} `json:"subtitles"`
		} `json:"source"`
		Outputs struct {
			Subtitles []struct {
				URL      string `json:"url"`
				Language string `json:"language"`
				Forced   bool   `json:"forced"`
			} `json:"subtitles"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(fetch(t, n.base+"/api/v1/jobs/"+j.ID), &view); err != nil {
		t.Fatal(err)
	}
	if len(view.Source.Subtitles) != 2 || view.Source.Subtitles[1].Codec != "ass" || !view.Source.Subtitles[1].Forced || len(view.Warnings) != 0 {
		t.Fatalf("source subtitles %+v, warnings %q", view.Source.Subtitles, view.Warnings)
	}
	var langs []string
	for _, s := range view.Outputs.Subtitles {
		langs = append(langs, s.Language)
	}
	if strings.Join(langs, ",") != "en,fr,de" || !view.Outputs.Subtitles[1].Forced {
		t.Fatalf("output subtitles %+v", view.Outputs.Subtitles)
	}
	if got := string(fetch(t, n.base+view.Outputs.Subtitles[2].URL)); got != "WEBVTT\n\n00:00:02.000 --> 00:00:02.800\nHallo\n" {
		t.Errorf("German sidecar: %q", got)
	}
	if got := string(fetch(t, n.base+view.Outputs.Subtitles[1].URL)); !strings.Contains(got, "00:00:01.000 --> 00:00:02.000\nBonjour") {
		t.Errorf("French sidecar: %q", got)
	}

	master := string(fetch(t, n.base+j.Outputs.HLS))
	for _, want := range []string{`LANGUAGE="en",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI="subs/0-en.m3u8"`,
		`LANGUAGE="fr",DEFAULT=NO,AUTOSELECT=YES,FORCED=YES,URI="subs/1-fr.m3u8"`, `LANGUAGE="de"`, `SUBTITLES="subs"`} {
		if !strings.Contains(master, want) {
			t.Errorf("master lacks %s:\n%s", want, master)
		}
	}
	base := strings.TrimSuffix(j.Outputs.HLS, "master.m3u8")
	pl := string(fetch(t, n.base+base+"subs/0-en.m3u8"))
	if !strings.Contains(pl, "0-en-00001.vtt") {
		t.Fatalf("English playlist:\n%s", pl)
	}
	if seg := string(fetch(t, n.base+base+"subs/0-en-00001.vtt")); !strings.Contains(seg, "X-TIMESTAMP-MAP=MPEGTS:0") ||
		!strings.Contains(seg, "00:00:02.500 --> 00:00:03.000\nAgain") || strings.Contains(seg, "Hello") {
		t.Errorf("English segment 1:\n%s", seg)
	}
	mpd := string(fetch(t, n.base+j.Outputs.DASH))
	for _, want := range []string{`contentType="text" mimeType="text/vtt" lang="de"`, `<BaseURL>subs/2-de.vtt</BaseURL>`} {
		if !strings.Contains(mpd, want) {
			t.Errorf("MPD lacks %s:\n%s", want, mpd)
		}
	}
}
