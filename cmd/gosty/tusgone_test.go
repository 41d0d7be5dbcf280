package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosty/gosty/httpapi"
)

// An upload the server no longer has (404 or 410 to HEAD: expired, or the
// node that held it is gone for good) is started again, once, by the CLI.
// A fake tus server: the first upload's PATCH is cut mid-body and then
// answered 410; the second upload takes every byte and makes the job.
func TestTusStartsAgainWhenTheUploadIsGone(t *testing.T) {
	data := bytes.Repeat([]byte("gosty"), 100_000)
	path := filepath.Join(t.TempDir(), "clip.mp4")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var created, got []string
	received := map[string][]byte{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Tus-Resumable", "1.0.0")
		got = append(got, r.Method+" "+r.URL.Path)
		switch {
		case r.Method == http.MethodPost && r.URL.Path == tusPath:
			loc := tusPath + "/u" + string(rune('1'+len(created)))
			created = append(created, loc)
			w.Header().Set("Location", loc)
			w.WriteHeader(http.StatusCreated)
		case r.Method == http.MethodPatch && r.URL.Path == tusPath+"/u1":
			io.CopyN(io.Discard, r.Body, 1000)
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			conn.Close() // the connection dies mid-body
		case r.URL.Path == tusPath+"/u1":
			w.WriteHeader(http.StatusGone)
		case r.Method == http.MethodPatch && r.URL.Path == tusPath+"/u2":
			b, _ := io.ReadAll(r.Body)
			received["u2"] = append(received["u2"], b...)
			w.Header().Set("Upload-Offset", "500000")
			w.Header().Set("Gosty-Job-Id", "job2")
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(httpapi.JobView{ID: "job2", State: "queued"})
		default:
			http.Error(w, "unexpected", http.StatusTeapot)
		}
	}))
	defer srv.Close()
	var stderr strings.Builder
	c := &client{server: srv.URL, hc: srv.Client(), stdout: io.Discard, stderr: &stderr, poll: 10 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	j, err := c.tusUpload(ctx, path, "", newProgress(ctx, io.Discard, false))
	if err != nil {
		t.Fatalf("upload: %v (requests %v)", err, got)
	}
	mu.Lock()
	defer mu.Unlock()
	if j.ID != "job2" || len(created) != 2 || !bytes.Equal(received["u2"], data) {
		t.Fatalf("job %q, uploads created %v, %d bytes in the second (requests %v)", j.ID, created, len(received["u2"]), got)
	}
	if !strings.Contains(stderr.String(), "starting it again") {
		t.Fatalf("stderr says nothing of the new start: %q", stderr.String())
	}
}
