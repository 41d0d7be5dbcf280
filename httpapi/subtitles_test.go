package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"strings"
	"testing"

	"github.com/gosty/gosty/cluster"
)

// sidecarBody is a multipart upload: parts are [field, file name, content]
// (no file name: a plain field).
func sidecarBody(t *testing.T, parts ...[3]string) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		if p[1] != "" {
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, p[0], p[1]))
		} else {
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q`, p[0]))
		}
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, p[2])
	}
	mw.Close()
	return &buf, mw.FormDataContentType()
}

const goodSRT = "1\n00:00:01,000 --> 00:00:02,000\nHi & <b>bye</b>\n"

func TestUploadSubtitles(t *testing.T) {
	e := newEnv(t, nil)
	body, ct := sidecarBody(t,
		[3]string{"subtitles", "film.en.srt", goodSRT},
		[3]string{"subtitles", "film.fr-CA.vtt", "WEBVTT\n\n00:01.000 --> 00:02.000\nSalut\n"},
		[3]string{"subtitles_name", "", "Québécois"},
		[3]string{"subtitles", "commentary.srt", goodSRT},
		[3]string{"subtitles_lang", "", "de"},
		[3]string{"file", "clip.mp4", "video bytes"})
	resp, b := do(t, "POST", e.srv.URL+"/api/v1/jobs", body, map[string]string{"Content-Type": ct})
	if resp.StatusCode != 201 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	e.jobs.mu.Lock()
	s := e.jobs.submits[0]
	e.jobs.mu.Unlock()
	if string(s.data) != "video bytes" || len(s.sidecars) != 3 {
		t.Fatalf("submitted %q with %d sidecars", s.data, len(s.sidecars))
	}
	got := []string{}
	for _, sc := range s.sidecars {
		got = append(got, sc.Language+"|"+sc.Name)
	}
	if want := "en||fr-CA|Québécois|de|"; strings.Join(got, "|") != want {
		t.Errorf("sidecars %q, want %q", strings.Join(got, "|"), want)
	}
	if want := "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHi &amp; <b>bye</b>\n"; string(s.sidecars[0].VTT) != want {
		t.Errorf("sidecar re-emitted as %q, want %q", s.sidecars[0].VTT, want)
	}
}

func TestUploadSubtitlesRefused(t *testing.T) {
	for name, parts := range map[string][][3]string{
		"not subtitles": {{"subtitles", "film.en.srt", "\x00\x01binary"}, {"file", "clip.mp4", "v"}},
		"bad timing":    {{"subtitles", "film.srt", "1\n00:00:01 --> 2\nx\n"}, {"file", "clip.mp4", "v"}},
		"wrong kind":    {{"subtitles", "film.ass", goodSRT}, {"file", "clip.mp4", "v"}},
		"bad language":  {{"subtitles", "film.srt", goodSRT}, {"subtitles_lang", "", "Klingon please"}, {"file", "clip.mp4", "v"}},
		"lang first":    {{"subtitles_lang", "", "en"}, {"subtitles", "film.srt", goodSRT}, {"file", "clip.mp4", "v"}},
		"after file":    {{"file", "clip.mp4", "v"}, {"subtitles", "film.srt", goodSRT}},
		"too big":       {{"subtitles", "film.srt", goodSRT + strings.Repeat("x", 2<<20)}, {"file", "clip.mp4", "v"}},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, nil)
			body, ct := sidecarBody(t, parts...)
			resp, b := do(t, "POST", e.srv.URL+"/api/v1/jobs", body, map[string]string{"Content-Type": ct})
			if resp.StatusCode != 400 {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			if code, msg := errCode(t, b); code != "invalid_request" || !strings.Contains(msg, "subtitles") {
				t.Errorf("error %s: %s", code, msg)
			}
			if len(e.jobs.submits) != 0 {
				t.Error("a job was committed")
			}
		})
	}
}

// TestUploadSubtitlesNeedsToken: the field is part of the upload and obeys
// its authentication.
func TestUploadSubtitlesNeedsToken(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.APIToken = "s3cret" })
	for _, hdr := range []string{"", "Bearer wrong"} {
		body, ct := sidecarBody(t, [3]string{"subtitles", "film.en.srt", goodSRT}, [3]string{"file", "clip.mp4", "v"})
		resp, b := do(t, "POST", e.srv.URL+"/api/v1/jobs", body, map[string]string{"Content-Type": ct, "Authorization": hdr})
		if code, _ := errCode(t, b); resp.StatusCode != 401 || code != "unauthorized" {
			t.Fatalf("%q: status %d %s", hdr, resp.StatusCode, b)
		}
	}
	body, ct := sidecarBody(t, [3]string{"subtitles", "film.en.srt", goodSRT}, [3]string{"file", "clip.mp4", "v"})
	if resp, b := do(t, "POST", e.srv.URL+"/api/v1/jobs", body, map[string]string{"Content-Type": ct, "Authorization": "Bearer s3cret"}); resp.StatusCode != 201 {
		t.Fatalf("with the token: %d %s", resp.StatusCode, b)
	}
	if len(e.jobs.submits) != 1 || len(e.jobs.submits[0].sidecars) != 1 {
		t.Fatalf("submits %+v", e.jobs.submits)
	}
}

func TestJobViewSubtitles(t *testing.T) {
	j := cluster.Job{ID: "j1", State: cluster.JobDone, HLS: "master.m3u8",
		Subtitles: []cluster.SubtitleTrack{{Language: "en", Name: "English", Default: true}, {Name: "Subtitles 2", Forced: true}},
		Warnings:  []string{"subtitle stream 3 (hdmv_pgs_subtitle) is image-based and was not converted"}}
	b, _ := json.Marshal(NewJobView(j, 1))
	for _, want := range []string{
		`"warnings":["subtitle stream 3 (hdmv_pgs_subtitle) is image-based and was not converted"]`,
		`"subtitles":[{"url":"/api/v1/jobs/j1/files/subs/0-en.vtt","language":"en","name":"English","default":true},` +
			`{"url":"/api/v1/jobs/j1/files/subs/1-und.vtt","name":"Subtitles 2","forced":true}]`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("view %s lacks %s", b, want)
		}
	}
	j.HLS, j.State = "", cluster.JobTranscoding
	if b, _ := json.Marshal(NewJobView(j, 0)); strings.Contains(string(b), `"url"`) {
		t.Errorf("a job not packaged yet lists sidecars: %s", b)
	}
}
