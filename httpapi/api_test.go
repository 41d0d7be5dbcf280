package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/cluster/peerproto"
	"github.com/gosty/gosty/transcoder"
)

func do(t *testing.T, method, url string, body io.Reader, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// errCode decodes the API error shape, failing the test if it is not one.
func errCode(t *testing.T, b []byte) (code, msg string) {
	t.Helper()
	var e peerproto.ErrorBody
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" {
		t.Fatalf("not a JSON error body: %q (%v)", b, err)
	}
	return e.Error.Code, e.Error.Message
}

func sampleJob() cluster.Job {
	return cluster.Job{
		ID:    "j1",
		Name:  "movie.mov",
		State: cluster.JobTranscoding,
		Source: cluster.Probe{Format: "mov,mp4", Duration: 12,
			Video: &cluster.VideoStream{Codec: "h264", Width: 1280, Height: 720, FrameRate: 25}},
		Renditions: []cluster.Rendition{{Name: "720p", Width: 1280, Height: 720, Bitrate: 3e6, Codec: "h264"}},
		Chunks: []cluster.Chunk{
			{Index: 0, Start: 0, Duration: 6, Frames: 150, EncodedBy: "n2", Attempts: 1},
			{Index: 1, Start: 6, Duration: 6, Frames: 150, Attempts: 0},
		},
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New accepted an empty config")
	}
}

func TestRoutes(t *testing.T) {
	e := newEnv(t, nil)
	e.jobs.put(sampleJob())
	e.jobs.setProgress("j1", 0.25)

	tests := []struct {
		name     string
		method   string
		path     string
		setup    func()
		status   int
		errCode  string // expected JSON error code, if any
		contains []string
	}{
		{name: "healthz", method: "GET", path: "/healthz", status: 200, contains: []string{`"status":"ok"`}},
		{name: "readyz", method: "GET", path: "/readyz", status: 200},
		{name: "readyz unready", method: "GET", path: "/readyz", status: 503, errCode: "unavailable",
			setup: func() { e.health.err = errors.New("draining") }, contains: []string{"draining"}},
		{name: "cluster", method: "GET", path: "/api/v1/cluster", status: 200, contains: []string{`"leader":"n1"`}},
		{name: "list", method: "GET", path: "/api/v1/jobs", status: 200, contains: []string{`"jobs":[`, `"id":"j1"`}},
		{name: "get", method: "GET", path: "/api/v1/jobs/j1", status: 200,
			contains: []string{`"id":"j1"`, `"state":"transcoding"`, `"progress":0.25`, `"encoded_by":"n2"`, `"name":"720p"`}},
		{name: "get unknown", method: "GET", path: "/api/v1/jobs/nope", status: 404, errCode: "not_found"},
		{name: "get malformed id", method: "GET", path: "/api/v1/jobs/a.b", status: 400, errCode: "invalid_request"},
		{name: "unknown route", method: "GET", path: "/nope/nothing", status: 404, errCode: "not_found"},
		{name: "wrong method", method: "PUT", path: "/api/v1/jobs", status: 405, errCode: "method_not_allowed"},
		{name: "metrics", method: "GET", path: "/metrics", status: 200, contains: []string{"gosty_http_requests_total"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.health.err = nil
			if tt.setup != nil {
				tt.setup()
			}
			resp, b := do(t, tt.method, e.srv.URL+tt.path, nil, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			if tt.errCode != "" {
				if code, _ := errCode(t, b); code != tt.errCode {
					t.Fatalf("error code %q, want %q", code, tt.errCode)
				}
			}
			for _, s := range tt.contains {
				if !bytes.Contains(b, []byte(s)) {
					t.Errorf("body lacks %s: %s", s, b)
				}
			}
		})
	}
}

func TestJobView(t *testing.T) {
	j := sampleJob()
	v := NewJobView(j, 0.5)
	b, _ := json.Marshal(v)
	for _, absent := range []string{`"outputs"`, `"finished_at"`, `"error"`} {
		if bytes.Contains(b, []byte(absent)) {
			t.Errorf("view has %s though the job has none: %s", absent, b)
		}
	}
	j.State = cluster.JobDone
	j.FinishedAt = time.Date(2025, 1, 2, 4, 0, 0, 0, time.UTC)
	j.HLS = "master.m3u8"
	j.DASH = "manifest.mpd"
	j.MP4 = map[string]string{"720p": "mp4/720p.mp4"}
	v = NewJobView(j, 0.5)
	if v.Progress != 1 {
		t.Errorf("done job progress %v, want 1", v.Progress)
	}
	if v.Outputs == nil || v.Outputs.HLS != "/api/v1/jobs/j1/files/master.m3u8" ||
		v.Outputs.DASH != "/api/v1/jobs/j1/files/manifest.mpd" ||
		v.Outputs.MP4["720p"] != "/api/v1/jobs/j1/files/mp4/720p.mp4" {
		t.Fatalf("outputs %+v", v.Outputs)
	}
	b, _ = json.Marshal(v)
	if !bytes.Contains(b, []byte(`"finished_at":"2025-01-02T04:00:00Z"`)) {
		t.Errorf("no finished_at: %s", b)
	}
	if got := NewJobView(sampleJob(), 7).Progress; got != 1 {
		t.Errorf("progress not clamped: %v", got)
	}
}

// TestSubmitMultipartStreams checks that the file reaches Submit while the
// client is still sending it, intact, with the options and the file name.
func TestSubmitMultipartStreams(t *testing.T) {
	e := newEnv(t, nil)
	e.jobs.received = make(chan int, 1024)

	data := make([]byte, 3<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	half := len(data) / 2
	opts := `{"renditions":["720p"],"chunk_seconds":4}`

	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	streamed := make(chan error, 1)
	go func() {
		err := func() error {
			if err := mw.WriteField("options", opts); err != nil {
				return err
			}
			fw, err := mw.CreateFormFile("file", "clip.mp4")
			if err != nil {
				return err
			}
			if _, err := fw.Write(data[:half]); err != nil {
				return err
			}
			// Send the rest only once the backend has seen bytes: proof
			// that the upload is not buffered whole before Submit.
			deadline := time.After(10 * time.Second)
			for {
				select {
				case n := <-e.jobs.received:
					if n > 0 {
						goto rest
					}
				case <-deadline:
					return errors.New("backend saw no bytes while the upload was in progress")
				}
			}
		rest:
			go func() { // keep draining progress reports after the check
				for range e.jobs.received {
				}
			}()
			if _, err := fw.Write(data[half:]); err != nil {
				return err
			}
			return mw.Close()
		}()
		streamed <- err
		pw.CloseWithError(err)
	}()
	resp, b := do(t, "POST", e.srv.URL+"/api/v1/jobs", pr, map[string]string{"Content-Type": mw.FormDataContentType()})
	close(e.jobs.received)
	if err := <-streamed; err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var v JobView
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if loc := resp.Header.Get("Location"); loc != "/api/v1/jobs/"+v.ID || v.ID == "" {
		t.Fatalf("Location %q for job %q", loc, v.ID)
	}
	subs := e.jobs.submissions()
	if len(subs) != 1 {
		t.Fatalf("%d submissions", len(subs))
	}
	s := subs[0]
	if !bytes.Equal(s.data, data) {
		t.Fatalf("upload corrupted: got %d bytes, want %d", len(s.data), len(data))
	}
	if string(s.options) != opts || s.filename != "clip.mp4" {
		t.Fatalf("filename %q options %q", s.filename, s.options)
	}
}

func multipartBody(t *testing.T, parts ...[2]string) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		var w io.Writer
		var err error
		if p[0] == "file" {
			w, err = mw.CreateFormFile("file", "in.mp4")
		} else {
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q`, p[0]))
			w, err = mw.CreatePart(h)
		}
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, p[1])
	}
	mw.Close()
	return &buf, mw.FormDataContentType()
}

func TestSubmitErrors(t *testing.T) {
	tests := []struct {
		name      string
		mod       func(*Config)
		submitErr error
		body      func(t *testing.T) (io.Reader, string, string) // body, content type, query
		hdr       map[string]string
		status    int
		code      string
		msg       string // substring of the message
		committed int
	}{
		{
			name:   "options after file",
			status: 400, code: "invalid_request", msg: "before the file",
			body: func(t *testing.T) (io.Reader, string, string) {
				b, ct := multipartBody(t, [2]string{"file", "video"}, [2]string{"options", `{}`})
				return b, ct, ""
			},
		},
		{
			name:   "no file field",
			status: 400, code: "invalid_request",
			body: func(t *testing.T) (io.Reader, string, string) {
				b, ct := multipartBody(t, [2]string{"options", `{}`})
				return b, ct, ""
			},
		},
		{
			name:   "raw without filename",
			status: 400, code: "invalid_request", msg: "filename",
			body: func(t *testing.T) (io.Reader, string, string) {
				return strings.NewReader("video"), "application/octet-stream", ""
			},
		},
		{
			name:      "malformed options",
			submitErr: fmt.Errorf("options: %w", cluster.ErrInvalid),
			status:    400, code: "invalid_request", msg: "options: invalid request",
			body: func(t *testing.T) (io.Reader, string, string) {
				b, ct := multipartBody(t, [2]string{"options", `{nope`}, [2]string{"file", "video"})
				return b, ct, ""
			},
		},
		{
			name:      "media error",
			submitErr: fmt.Errorf("checking upload: %w", &transcoder.MediaError{Reason: "no video stream", Err: errors.New("ffprobe: /data/x")}),
			status:    422, code: "invalid_media",
			body: func(t *testing.T) (io.Reader, string, string) {
				return strings.NewReader(""), "", "?filename=empty.mp4"
			},
		},
		{
			name:      "not leader",
			submitErr: fmt.Errorf("commit: %w", cluster.ErrNotLeader),
			status:    503, code: "unavailable",
			body: func(t *testing.T) (io.Reader, string, string) {
				return strings.NewReader("v"), "", "?filename=a.mp4"
			},
		},
		{
			name:      "too few copies",
			submitErr: fmt.Errorf("upload a.mp4: %w: stored on 1 of the 2 nodes", cluster.ErrTooFewCopies),
			status:    503, code: "insufficient_replicas", msg: "stored on 1 of the 2 nodes",
			body: func(t *testing.T) (io.Reader, string, string) {
				return strings.NewReader("v"), "", "?filename=a.mp4"
			},
		},
		{
			name:      "conflict",
			submitErr: fmt.Errorf("commit: %w", cluster.ErrConflict),
			status:    409, code: "conflict",
			body: func(t *testing.T) (io.Reader, string, string) {
				return strings.NewReader("v"), "", "?filename=a.mp4"
			},
		},
		{
			name:      "internal error is not leaked",
			submitErr: errors.New("disk /var/lib/gosty full"),
			status:    500, code: "internal", msg: "internal error",
			body: func(t *testing.T) (io.Reader, string, string) {
				return strings.NewReader("v"), "", "?filename=a.mp4"
			},
		},
		{
			name:   "too large by Content-Length",
			mod:    func(c *Config) { c.MaxUploadBytes = 1024 },
			status: 413, code: "too_large",
			body: func(t *testing.T) (io.Reader, string, string) {
				return bytes.NewReader(make([]byte, 4096)), "", "?filename=a.mp4"
			},
		},
		{
			name:   "too large streamed",
			mod:    func(c *Config) { c.MaxUploadBytes = 1024 },
			status: 413, code: "too_large",
			body: func(t *testing.T) (io.Reader, string, string) {
				// A reader of unknown length: the request is chunked.
				return io.MultiReader(bytes.NewReader(make([]byte, 4096))), "", "?filename=a.mp4"
			},
		},
		{
			name:   "too large multipart",
			mod:    func(c *Config) { c.MaxUploadBytes = 1024 },
			status: 413, code: "too_large",
			body: func(t *testing.T) (io.Reader, string, string) {
				b, ct := multipartBody(t, [2]string{"file", strings.Repeat("x", 4096)})
				return io.MultiReader(b), ct, ""
			},
		},
		{
			name:   "token missing",
			mod:    func(c *Config) { c.APIToken = "s3cret" },
			status: 401, code: "unauthorized",
			body: func(t *testing.T) (io.Reader, string, string) {
				return strings.NewReader("v"), "", "?filename=a.mp4"
			},
		},
		{
			name:   "token wrong",
			mod:    func(c *Config) { c.APIToken = "s3cret" },
			hdr:    map[string]string{"Authorization": "Bearer s3creT"},
			status: 401, code: "unauthorized",
			body: func(t *testing.T) (io.Reader, string, string) {
				return strings.NewReader("v"), "", "?filename=a.mp4"
			},
		},
		{
			name:      "token right",
			mod:       func(c *Config) { c.APIToken = "s3cret" },
			hdr:       map[string]string{"Authorization": "Bearer s3cret"},
			status:    201,
			committed: 1,
			body: func(t *testing.T) (io.Reader, string, string) {
				return strings.NewReader("v"), "", "?filename=a.mp4"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.mod)
			e.jobs.submitErr = tt.submitErr
			body, ct, query := tt.body(t)
			hdr := map[string]string{}
			for k, v := range tt.hdr {
				hdr[k] = v
			}
			if ct != "" {
				hdr["Content-Type"] = ct
			}
			resp, b := do(t, "POST", e.srv.URL+"/api/v1/jobs"+query, body, hdr)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			if tt.code != "" {
				code, msg := errCode(t, b)
				if code != tt.code || !strings.Contains(msg, tt.msg) {
					t.Fatalf("error %q %q, want %q containing %q", code, msg, tt.code, tt.msg)
				}
				if tt.code == "invalid_media" && msg != "no video stream" {
					t.Fatalf("media error message %q, want the reason only", msg)
				}
			}
			if n := len(e.jobs.submissions()); n != tt.committed {
				t.Fatalf("%d jobs committed, want %d", n, tt.committed)
			}
		})
	}
}

func TestSubmitRaw(t *testing.T) {
	e := newEnv(t, nil)
	opts := `{"codec":"h264"}`
	q := url.Values{"filename": {"my clip.mov"}, "options": {opts}}
	resp, b := do(t, "POST", e.srv.URL+"/api/v1/jobs?"+q.Encode(), strings.NewReader("raw video bytes"),
		map[string]string{"Content-Type": "video/quicktime"})
	if resp.StatusCode != 201 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	if resp.Header.Get("Location") != "/api/v1/jobs/job-1" {
		t.Fatalf("Location %q", resp.Header.Get("Location"))
	}
	s := e.jobs.submissions()[0]
	if string(s.data) != "raw video bytes" || s.filename != "my clip.mov" || string(s.options) != opts {
		t.Fatalf("submission %q %q %q", s.filename, s.data, s.options)
	}
}

func TestDelete(t *testing.T) {
	tests := []struct {
		name      string
		state     cluster.JobState
		id        string
		cancelErr error
		status    int
		code      string
		gone      bool
	}{
		{name: "running job is canceled", state: cluster.JobTranscoding, id: "j1", status: 200},
		{name: "finished job is deleted", state: cluster.JobDone, id: "j1", status: 204, gone: true},
		{name: "unknown job", state: cluster.JobDone, id: "zz", status: 404, code: "not_found"},
		{name: "conflict", state: cluster.JobDone, id: "j1", cancelErr: fmt.Errorf("busy: %w", cluster.ErrConflict), status: 409, code: "conflict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.APIToken = "tok" })
			j := sampleJob()
			j.State = tt.state
			e.jobs.put(j)
			e.jobs.cancelErr = tt.cancelErr

			if resp, _ := do(t, "DELETE", e.srv.URL+"/api/v1/jobs/"+tt.id, nil, nil); resp.StatusCode != 401 {
				t.Fatalf("DELETE without token: %d", resp.StatusCode)
			}
			resp, b := do(t, "DELETE", e.srv.URL+"/api/v1/jobs/"+tt.id, nil, map[string]string{"Authorization": "Bearer tok"})
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			switch {
			case tt.code != "":
				if code, _ := errCode(t, b); code != tt.code {
					t.Fatalf("code %q", code)
				}
			case tt.status == 200:
				var v JobView
				if err := json.Unmarshal(b, &v); err != nil || v.State != cluster.JobCanceled {
					t.Fatalf("view %s (%v)", b, err)
				}
			case tt.status == 204:
				if len(b) != 0 {
					t.Fatalf("204 with body %q", b)
				}
			}
			if _, ok := e.jobs.Job("j1"); ok == tt.gone {
				t.Fatalf("job present=%v after delete", ok)
			}
		})
	}
}

func TestPanicIsJSON500(t *testing.T) {
	e := newEnv(t, nil)
	e.jobs.panicList = true
	resp, b := do(t, "GET", e.srv.URL+"/api/v1/jobs", nil, nil)
	if resp.StatusCode != 500 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if code, msg := errCode(t, b); code != "internal" || strings.Contains(msg, "secret") {
		t.Fatalf("%q %q", code, msg)
	}
	// The server survives.
	e.jobs.panicList = false
	if resp, _ := do(t, "GET", e.srv.URL+"/api/v1/jobs", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("after panic: %d", resp.StatusCode)
	}
}

func TestMetricsUseRouteTemplates(t *testing.T) {
	e := newEnv(t, nil)
	e.jobs.put(sampleJob())
	do(t, "GET", e.srv.URL+"/api/v1/jobs/j1", nil, nil)
	do(t, "GET", e.srv.URL+"/no/such/thing", nil, nil)
	_, b := do(t, "GET", e.srv.URL+"/metrics", nil, nil)
	text := string(b)
	for _, want := range []string{
		`gosty_http_requests_total{code="200",method="GET",route="/api/v1/jobs/:id"} 1`,
		`gosty_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`gosty_http_request_duration_seconds_bucket{method="GET",route="/api/v1/jobs/:id",le=`,
		`gosty_http_requests_in_flight`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(text, "/no/such/thing") || strings.Contains(text, `route="/api/v1/jobs/j1"`) {
		t.Errorf("raw paths leaked into labels")
	}
}

func TestFiles(t *testing.T) {
	e := newEnv(t, nil)
	j := sampleJob()
	j.State = cluster.JobDone
	seg := make([]byte, 1000)
	for i := range seg {
		seg[i] = byte(i)
	}
	j.Outputs = map[string]cluster.BlobRef{
		"master.m3u8":      e.blobs.add("h-master", []byte("#EXTM3U\n")),
		"manifest.mpd":     e.blobs.add("h-mpd", []byte("<MPD/>")),
		"seg-0-00001.m4s":  e.blobs.add("h-seg", seg),
		"mp4/720p.mp4":     e.blobs.add("h-mp4", []byte("mp4data")),
		"audio.m4a":        e.blobs.add("h-audio", []byte("aac")),
		"missing-blob.m4s": {Hash: "h-none", Size: 3},
	}
	j.HLS, j.DASH, j.MP4 = "master.m3u8", "manifest.mpd", map[string]string{"720p": "mp4/720p.mp4"}
	e.jobs.put(j)
	base := e.srv.URL + "/api/v1/jobs/j1/files/"

	t.Run("content types", func(t *testing.T) {
		for rel, ct := range map[string]string{
			"master.m3u8":     "application/vnd.apple.mpegurl",
			"manifest.mpd":    "application/dash+xml",
			"seg-0-00001.m4s": "video/iso.segment",
			"mp4/720p.mp4":    "video/mp4",
			"audio.m4a":       "audio/mp4",
		} {
			resp, _ := do(t, "GET", base+rel, nil, nil)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ct {
				t.Errorf("%s: %d %q, want %q", rel, resp.StatusCode, resp.Header.Get("Content-Type"), ct)
			}
			if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
				t.Errorf("%s: no CORS", rel)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != cacheImmutable {
				t.Errorf("%s: Cache-Control %q", rel, cc)
			}
		}
	})

	t.Run("range", func(t *testing.T) {
		resp, b := do(t, "GET", base+"seg-0-00001.m4s", nil, map[string]string{"Range": "bytes=100-199"})
		if resp.StatusCode != http.StatusPartialContent {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if cr := resp.Header.Get("Content-Range"); cr != "bytes 100-199/1000" {
			t.Fatalf("Content-Range %q", cr)
		}
		if !bytes.Equal(b, seg[100:200]) {
			t.Fatalf("wrong bytes")
		}
		resp, b = do(t, "GET", base+"seg-0-00001.m4s", nil, map[string]string{"Range": "bytes=5000-"})
		if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
			t.Fatalf("unsatisfiable range: %d", resp.StatusCode)
		}
		if code, _ := errCode(t, b); code != "range_not_satisfiable" {
			t.Fatalf("code %q", code)
		}
	})

	t.Run("head and etag", func(t *testing.T) {
		resp, b := do(t, "HEAD", base+"mp4/720p.mp4", nil, nil)
		if resp.StatusCode != 200 || len(b) != 0 || resp.ContentLength != int64(len("mp4data")) {
			t.Fatalf("HEAD: %d len %d body %q", resp.StatusCode, resp.ContentLength, b)
		}
		if resp.Header.Get("Accept-Ranges") != "bytes" || resp.Header.Get("ETag") != `"h-mp4"` {
			t.Fatalf("headers %v", resp.Header)
		}
		resp, _ = do(t, "GET", base+"mp4/720p.mp4", nil, map[string]string{"If-None-Match": `"h-mp4"`})
		if resp.StatusCode != http.StatusNotModified {
			t.Fatalf("If-None-Match: %d", resp.StatusCode)
		}
	})

	t.Run("preflight", func(t *testing.T) {
		resp, _ := do(t, "OPTIONS", base+"seg-0-00001.m4s", nil, map[string]string{
			"Origin": "https://player.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "range"})
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Range") {
			t.Fatalf("preflight %d %v", resp.StatusCode, resp.Header)
		}
	})

	t.Run("not found", func(t *testing.T) {
		for p, want := range map[string]int{
			"nope.m4s": 404,
			// Malformed paths are refused before any lookup
			// (TestFilePathValidation has the full table).
			"":                         400,
			"../../../../etc/passwd":   400,
			"mp4/../master.m3u8":       400,
			"%2e%2e/%2e%2e/etc/passwd": 400,
			"..%2f..%2fetc%2fpasswd":   400,
			"/master.m3u8":             400,
		} {
			resp, b := do(t, "GET", base+p, nil, nil)
			if resp.StatusCode != want {
				t.Errorf("%q: status %d: %s", p, resp.StatusCode, b)
				continue
			}
			errCode(t, b)
		}
		resp, _ := do(t, "GET", e.srv.URL+"/api/v1/jobs/other/files/master.m3u8", nil, nil)
		if resp.StatusCode != 404 {
			t.Errorf("unknown job: %d", resp.StatusCode)
		}
		resp, _ = do(t, "GET", base+"missing-blob.m4s", nil, nil)
		if resp.StatusCode != 404 {
			t.Errorf("missing blob: %d", resp.StatusCode)
		}
	})

	t.Run("playlist of unfinished job revalidates", func(t *testing.T) {
		e.jobs.setState("j1", cluster.JobPackaging)
		defer e.jobs.setState("j1", cluster.JobDone)
		resp, _ := do(t, "GET", base+"master.m3u8", nil, nil)
		if cc := resp.Header.Get("Cache-Control"); cc != cacheRevalidate {
			t.Fatalf("Cache-Control %q", cc)
		}
	})
}

// sse reads server-sent events from a response body.
type sseEvent struct {
	id, event, data, comment string
	eof                      bool
}

func readEvents(body io.Reader, out chan<- sseEvent) {
	defer close(out)
	buf := make([]byte, 0, 4096)
	tmp := make([]byte, 4096)
	var cur sseEvent
	for {
		n, err := body.Read(tmp)
		buf = append(buf, tmp[:n]...)
		for {
			i := bytes.IndexByte(buf, '\n')
			if i < 0 {
				break
			}
			line := string(buf[:i])
			buf = buf[i+1:]
			switch {
			case line == "":
				out <- cur
				cur = sseEvent{}
			case strings.HasPrefix(line, ":"):
				cur.comment = strings.TrimSpace(line[1:])
			case strings.HasPrefix(line, "id: "):
				cur.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				cur.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				cur.data = line[6:]
			}
		}
		if err != nil {
			out <- sseEvent{eof: true}
			return
		}
	}
}

func next(t *testing.T, ch <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("event stream reader finished")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return sseEvent{}
}

func openEvents(t *testing.T, ctx context.Context, url string, hdr map[string]string) (*http.Response, <-chan sseEvent) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	ch := make(chan sseEvent, 16)
	go readEvents(resp.Body, ch)
	return resp, ch
}

func jobEvent(t *testing.T, ev sseEvent) JobView {
	t.Helper()
	if ev.event != "job" {
		t.Fatalf("event %+v, want a job event", ev)
	}
	var v JobView
	if err := json.Unmarshal([]byte(ev.data), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestEvents(t *testing.T) {
	e := newEnv(t, nil)
	e.jobs.put(sampleJob())
	e.jobs.setProgress("j1", 0.1)
	other := sampleJob()
	other.ID = "j2"
	e.jobs.put(other)

	resp, ch := openEvents(t, t.Context(), e.srv.URL+"/api/v1/jobs/j1/events", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	v := jobEvent(t, next(t, ch))
	if v.ID != "j1" || v.State != cluster.JobTranscoding || v.Progress != 0.1 {
		t.Fatalf("initial %+v", v)
	}
	// A change to another job sends nothing; the next event is j1's progress.
	e.jobs.setProgress("j2", 0.9)
	e.jobs.setProgress("j1", 0.5)
	ev := next(t, ch)
	if v := jobEvent(t, ev); v.Progress != 0.5 || v.State != cluster.JobTranscoding {
		t.Fatalf("progress event %+v", v)
	}
	if ev.id != "2" {
		t.Fatalf("event id %q, want 2", ev.id)
	}
	e.jobs.setState("j1", cluster.JobPackaging)
	if v := jobEvent(t, next(t, ch)); v.State != cluster.JobPackaging {
		t.Fatalf("state event %+v", v)
	}
	e.jobs.setState("j1", cluster.JobDone)
	if v := jobEvent(t, next(t, ch)); v.State != cluster.JobDone || v.Progress != 1 {
		t.Fatalf("final event %+v", v)
	}
	if ev := next(t, ch); !ev.eof {
		t.Fatalf("stream went on after the terminal state: %+v", ev)
	}

	// A reconnecting EventSource is told to stop.
	resp, _ = openEvents(t, t.Context(), e.srv.URL+"/api/v1/jobs/j1/events", map[string]string{"Last-Event-ID": "4"})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("reconnect after terminal: %d", resp.StatusCode)
	}
	// A plain client gets the final state once, then the end.
	_, ch = openEvents(t, t.Context(), e.srv.URL+"/api/v1/jobs/j1/events", nil)
	if v := jobEvent(t, next(t, ch)); v.State != cluster.JobDone {
		t.Fatalf("%+v", v)
	}
	if ev := next(t, ch); !ev.eof {
		t.Fatalf("%+v", ev)
	}

	resp, b := do(t, "GET", e.srv.URL+"/api/v1/jobs/zz/events", nil, nil)
	if resp.StatusCode != 404 {
		t.Fatalf("unknown job: %d %s", resp.StatusCode, b)
	}
}

func TestEventsPingDeleteAndDisconnect(t *testing.T) {
	e := newEnv(t, nil)
	e.api.pingInterval = 20 * time.Millisecond
	e.jobs.put(sampleJob())

	_, ch := openEvents(t, t.Context(), e.srv.URL+"/api/v1/jobs/j1/events", nil)
	jobEvent(t, next(t, ch))
	if ev := next(t, ch); ev.comment != "ping" {
		t.Fatalf("want a ping, got %+v", ev)
	}
	e.jobs.remove("j1")
	for {
		ev := next(t, ch)
		if ev.comment == "ping" {
			continue
		}
		if ev.event != "deleted" {
			t.Fatalf("want deleted, got %+v", ev)
		}
		break
	}
	if ev := next(t, ch); !ev.eof {
		t.Fatalf("%+v", ev)
	}

	// A client that goes away ends the handler: the in-flight gauge drops
	// back and the server can close (Cleanup would hang otherwise).
	e.jobs.put(sampleJob())
	ctx, cancel := context.WithCancel(t.Context())
	_, ch = openEvents(t, ctx, e.srv.URL+"/api/v1/jobs/j1/events", nil)
	jobEvent(t, next(t, ch))
	cancel()
	closed := make(chan struct{})
	go func() { e.srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("event stream handler did not end after the client left")
	}
}
