package httpapi

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/gosty/gosty/cluster"
)

// TestPublishedJobMatchesOpenAPI: a done job published to a bucket, as the
// API writes it, is what openapi.yaml describes, and outputs.published
// holds the remote URLs (escaped per path segment, never signed).
func TestPublishedJobMatchesOpenAPI(t *testing.T) {
	doc := openAPIDocument(t)
	s := doc.Components.Schemas["Job"].Value
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	j := cluster.Job{ID: "j1", Name: "clip.mp4", State: cluster.JobDone, HLS: "master.m3u8", DASH: "manifest.mpd",
		MP4: map[string]string{"720p": "mp4/720p a.mp4"}, CreatedAt: now, UpdatedAt: now, FinishedAt: now,
		Renditions: []cluster.Rendition{{Name: "720p", Width: 1280, Height: 720}},
		Publish: &cluster.PublishStatus{Target: "s3://media/vod/", Expire: true, State: cluster.PublishPublished,
			Attempts: 2, LastAttemptAt: now, PublishedAt: now, BaseURL: "https://media.s3.us-east-1.amazonaws.com/vod/j1/",
			Files: 12, Bytes: 3456}}
	v := NewJobView(j, 1)
	v.Outputs.sign("sig=x")
	p := v.Outputs.Published
	if p == nil || p.HLS != "https://media.s3.us-east-1.amazonaws.com/vod/j1/master.m3u8" ||
		p.DASH != "https://media.s3.us-east-1.amazonaws.com/vod/j1/manifest.mpd" ||
		p.MP4["720p"] != "https://media.s3.us-east-1.amazonaws.com/vod/j1/mp4/720p%20a.mp4" {
		t.Fatalf("outputs.published: %+v", p)
	}
	check := func(name string, v JobView) {
		t.Helper()
		b, _ := json.Marshal(v)
		var doc any
		json.Unmarshal(b, &doc)
		if err := s.VisitJSON(doc, openapi3.EnableJSONSchema2020()); err != nil {
			t.Errorf("%s: %v\n%s", name, err, b)
		}
	}
	check("published", v)
	for _, st := range []string{cluster.PublishWaiting, cluster.PublishPending, cluster.PublishFailed, cluster.PublishSkipped,
		cluster.PublishExpiring, cluster.PublishRemoved} {
		jj := j
		ps := *j.Publish
		ps.State, ps.LastError = st, "s3 put s3://media/vod/j1/master.m3u8: AccessDenied (HTTP 403 Forbidden): no"
		jj.Publish = &ps
		w := NewJobView(jj, 1)
		if w.Outputs == nil || w.Outputs.Published != nil {
			t.Errorf("%s: outputs.published %+v", st, w.Outputs)
		}
		check(st, w)
	}
}
