package httpapi

import (
	"testing"

	"github.com/gosty/gosty/cluster"
)

func TestSignStoryboard(t *testing.T) {
	in := "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nsprite-000.jpg#xywh=0,0,160,90\n\n00:00:02.000 --> 00:00:03.500\r\nsprite-000.jpg#xywh=160,0,160,90\r\n"
	want := "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nsprite-000.jpg?exp=1&sig=x#xywh=0,0,160,90\n\n00:00:02.000 --> 00:00:03.500\r\nsprite-000.jpg?exp=1&sig=x#xywh=160,0,160,90\r\n"
	if got := string(signStoryboard([]byte(in), "exp=1&sig=x")); got != want {
		t.Fatalf("signed storyboard:\n%q\nwant\n%q", got, want)
	}
}

func TestJobViewPosterAndStoryboard(t *testing.T) {
	j := cluster.Job{ID: "j1", State: cluster.JobDone, HLS: "master.m3u8", Poster: "poster.jpg", Storyboard: "storyboard/storyboard.vtt"}
	v := NewJobView(j, 0)
	if v.Outputs == nil || v.Outputs.Poster != FileURL("j1", "poster.jpg") || v.Outputs.Storyboard != FileURL("j1", "storyboard/storyboard.vtt") {
		t.Fatalf("outputs %+v", v.Outputs)
	}
	v.Outputs.sign("exp=1")
	if v.Outputs.Poster != FileURL("j1", "poster.jpg")+"?exp=1" || v.Outputs.Storyboard != FileURL("j1", "storyboard/storyboard.vtt")+"?exp=1" {
		t.Fatalf("signed outputs %+v", v.Outputs)
	}
	if v := NewJobView(cluster.Job{ID: "j2", State: cluster.JobDone, HLS: "master.m3u8"}, 0); v.Outputs.Poster != "" || v.Outputs.Storyboard != "" {
		t.Fatalf("a job without thumbnails: %+v", v.Outputs)
	}
}
