// Package nodetest holds helpers for tests that run real nodes: polling
// with a deadline (never a sleep standing in for synchronisation), waiting
// for readiness, free loopback ports, generated clips and the one
// multipart upload form (Form, and Upload on top of it).
package nodetest

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// WaitFor polls cond every 50 ms until it holds, failing the test after d.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitReady waits until base/readyz answers 200.
func WaitReady(t testing.TB, base string, d time.Duration) {
	t.Helper()
	WaitFor(t, d, base+" ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// FreePort returns a TCP port free on 127.0.0.1 right now.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// GenClip writes a clip made with ffmpeg (usually from lavfi sources) to
// path and returns path.
func GenClip(t testing.TB, path string, args ...string) string {
	t.Helper()
	full := append([]string{"-nostdin", "-hide_banner", "-loglevel", "error", "-y"}, args...)
	if out, err := exec.Command("ffmpeg", append(full, path)...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
	}
	return path
}

// AVClip writes a clip of test pattern and tone (H.264 with a keyframe
// every second at 25 fps, AAC) of size ("640x360") and seconds to path,
// and returns path: the usual source of the process tests.
func AVClip(t testing.TB, path, size string, seconds int) string {
	t.Helper()
	return GenClip(t, path, "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%s:rate=25:duration=%d", size, seconds),
		"-f", "lavfi", "-i", fmt.Sprintf("sine=duration=%d", seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
		"-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")
}

// NoisyClip is AVClip at 640x360 with noise over the picture: a few MB a
// few seconds (noise compresses badly), so that an upload takes many reads
// and a cut connection lands mid-body.
func NoisyClip(t testing.TB, path string, seconds int) string {
	t.Helper()
	return GenClip(t, path, "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=640x360:rate=25:duration=%d", seconds),
		"-f", "lavfi", "-i", fmt.Sprintf("sine=duration=%d", seconds), "-vf", "noise=alls=60:allf=t", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
		"-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")
}

// Upload posts a file to base's job API as multipart (options first, as
// the API requires) and returns the status and body.
func Upload(t testing.TB, base, path, options string) (int, []byte) {
	t.Helper()
	return UploadAuth(t, base, "", path, options)
}

// UploadAuth is Upload with an API token ("" sends none).
func UploadAuth(t testing.TB, base, token, path, options string) (int, []byte) {
	t.Helper()
	buf, contentType := Form(t, path, options)
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/jobs", buf)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// Form is a multipart upload of the file at path, in the order the API
// requires: options (when not ""), then each sidecar subtitle file (name,
// content), then the file.
func Form(t testing.TB, path, options string, sidecars ...[2]string) (body *bytes.Buffer, contentType string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if options != "" {
		mw.WriteField("options", options)
	}
	for _, s := range sidecars {
		w, err := mw.CreateFormFile("subtitles", s[0])
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(s[1]))
	}
	fw, err := mw.CreateFormFile("file", filepath.Base(path))
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(data)
	mw.Close()
	return &buf, mw.FormDataContentType()
}

// StreamForm is a multipart upload form, written as it is read: options
// first (when not ""), as the API requires, then the file name with the
// bytes of body. For uploads too large to hold or of no declared length;
// the request goes chunked. An error reading body fails the form's read;
// closing form (CloseWithError) stops the writer.
func StreamForm(name, options string, body io.Reader) (form *io.PipeReader, contentType string) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() { // ends when body is sent or the reader closes
		var err error
		if options != "" {
			err = mw.WriteField("options", options)
		}
		var fw io.Writer
		if err == nil {
			fw, err = mw.CreateFormFile("file", name)
		}
		if err == nil {
			_, err = io.CopyBuffer(fw, body, make([]byte, 256<<10))
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr, mw.FormDataContentType()
}
