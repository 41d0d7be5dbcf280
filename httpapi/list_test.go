package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gosty/gosty/cluster"
)

// TestListPages: GET /api/v1/jobs answers pages, newest first, with a
// cursor to the next; the state filter pages the same way; bad paging
// parameters are a 400 JSON error; list items leave chunks out but count
// them.
func TestListPages(t *testing.T) {
	e := newEnv(t, nil)
	for i := range 7 {
		j := sampleJob()
		j.ID, j.ChunkCount = fmt.Sprintf("j%d", i), 2
		j.CreatedAt = time.Date(2025, 1, 2, 3, 4, i, 0, time.UTC)
		if i%2 == 0 {
			j.State = cluster.JobDone
		}
		e.jobs.put(j)
	}
	page := func(q string) JobList {
		t.Helper()
		resp, b := do(t, "GET", e.srv.URL+"/api/v1/jobs"+q, nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", q, resp.StatusCode, b)
		}
		var l JobList
		if err := json.Unmarshal(b, &l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	var got []string
	q := "?limit=3"
	for n := 0; ; n++ {
		l := page(q)
		for _, v := range l.Jobs {
			got = append(got, v.ID)
			if v.Chunks != nil || v.ChunkCount != 2 {
				t.Fatalf("list item %s: %d chunks inline, count %d", v.ID, len(v.Chunks), v.ChunkCount)
			}
		}
		if l.NextCursor == "" {
			break
		}
		if n > 5 {
			t.Fatal("the cursors never end")
		}
		q = "?limit=3&cursor=" + l.NextCursor
	}
	if fmt.Sprint(got) != "[j6 j5 j4 j3 j2 j1 j0]" {
		t.Fatalf("walked %v", got)
	}
	if l := page("?state=done"); len(l.Jobs) != 4 || l.Jobs[0].ID != "j6" || l.NextCursor != "" {
		t.Fatalf("done jobs: %+v", l)
	}
	if l := page(""); len(l.Jobs) != 7 {
		t.Fatalf("default page: %d jobs", len(l.Jobs))
	}
	for _, bad := range []string{"?limit=0", "?limit=501", "?limit=ten", "?cursor=nope"} {
		resp, b := do(t, "GET", e.srv.URL+"/api/v1/jobs"+bad, nil, nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s", bad, resp.StatusCode, b)
			continue
		}
		if code, _ := errCode(t, b); code != "invalid_request" {
			t.Errorf("%s: code %q", bad, code)
		}
	}
}

// TestCompactJobFromManifest: a compact done job serves its files and shows
// its chunks from its manifest; without the manifest its view still
// answers, and its files are 404.
func TestCompactJobFromManifest(t *testing.T) {
	e := newEnv(t, nil)
	j := sampleJob()
	j.State, j.Chunks, j.ChunkCount = cluster.JobDone, nil, 2
	j.HLS, j.DASH = "master.m3u8", "manifest.mpd"
	j.Manifest = cluster.BlobRef{Hash: "h-manifest", Size: 10}
	j.Sizes = &cluster.JobSizes{ChunkSize: 20, Encoded: 10, Published: 14}
	files := map[string]cluster.BlobRef{
		"master.m3u8":  e.blobs.add("h-master", []byte("#EXTM3U\n")),
		"manifest.mpd": e.blobs.add("h-mpd", []byte("<MPD/>")),
	}
	e.jobs.put(j)
	e.jobs.setManifest(j, cluster.NewManifest(j.ID, files, []cluster.Chunk{
		{Index: 0, Duration: 6, EncodedBy: "n2", Source: cluster.BlobRef{Size: 10}, Outputs: []cluster.BlobRef{{Size: 5}}},
		{Index: 1, Start: 6, Duration: 6, EncodedBy: "n3", Source: cluster.BlobRef{Size: 10}, Outputs: []cluster.BlobRef{{Size: 5}}},
	}))

	resp, b := do(t, "GET", e.srv.URL+"/api/v1/jobs/j1/files/master.m3u8", nil, nil)
	if resp.StatusCode != 200 || string(b) != "#EXTM3U\n" {
		t.Fatalf("file: %d %q", resp.StatusCode, b)
	}
	if resp, _ := do(t, "GET", e.srv.URL+"/api/v1/jobs/j1/files/nope.m4s", nil, nil); resp.StatusCode != 404 {
		t.Fatalf("a file the manifest does not list: %d", resp.StatusCode)
	}
	var v JobView
	resp, b = do(t, "GET", e.srv.URL+"/api/v1/jobs/j1", nil, nil)
	if err := json.Unmarshal(b, &v); err != nil || resp.StatusCode != 200 {
		t.Fatalf("job: %d %v", resp.StatusCode, err)
	}
	if len(v.Chunks) != 2 || v.Chunks[1].EncodedBy != "n3" || v.ChunkCount != 2 || v.Bytes.Published != 14 {
		t.Fatalf("view %+v", v)
	}

	// The manifest is out of reach (its holders are down).
	e.jobs.mu.Lock()
	delete(e.jobs.manifests, j.Manifest.Hash)
	e.jobs.mu.Unlock()
	resp, b = do(t, "GET", e.srv.URL+"/api/v1/jobs/j1", nil, nil)
	var bare JobView
	if err := json.Unmarshal(b, &bare); err != nil || resp.StatusCode != 200 || len(bare.Chunks) != 0 {
		t.Fatalf("job without its manifest: %d %v %d chunks", resp.StatusCode, err, len(bare.Chunks))
	}
	if resp, _ := do(t, "GET", e.srv.URL+"/api/v1/jobs/j1/files/master.m3u8", nil, nil); resp.StatusCode != 404 {
		t.Fatalf("a file without its manifest: %d", resp.StatusCode)
	}
}

// TestListEventsLookAtChangedJobsOnly: after the first page, the list
// stream sends the jobs the log changed, also those beyond the first page,
// and no others.
func TestListEventsLookAtChangedJobsOnly(t *testing.T) {
	e := newEnv(t, nil)
	e.api.listGap = time.Millisecond
	for i := range cluster.DefaultPageSize + 10 {
		j := sampleJob()
		j.ID, j.State = fmt.Sprintf("j%03d", i), cluster.JobDone
		j.CreatedAt = time.Date(2025, 1, 2, 3, 4, 5, i, time.UTC)
		e.jobs.put(j)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, ch := openEvents(t, ctx, e.srv.URL+"/api/v1/events", nil)
	l := jobList(t, nextEvent(t, ch))
	if len(l.Jobs) != cluster.DefaultPageSize || l.NextCursor == "" || l.Jobs[0].ID != "j059" {
		t.Fatalf("first page: %d jobs, next %q", len(l.Jobs), l.NextCursor)
	}
	e.jobs.setState("j003", cluster.JobFailed) // beyond the first page
	if v := jobEvent(t, nextEvent(t, ch)); v.ID != "j003" || v.State != cluster.JobFailed {
		t.Fatalf("changed job %+v", v)
	}
	e.jobs.setState("j040", cluster.JobCanceled)
	if v := jobEvent(t, nextEvent(t, ch)); v.ID != "j040" {
		t.Fatalf("changed job %+v", v)
	}
}
