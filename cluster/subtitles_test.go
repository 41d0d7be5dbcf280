package cluster

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func subtitledJob(id string) Job {
	j := testJob(id, false)
	j.Source.Subtitles = []SubtitleStream{{Index: 1, Codec: "subrip", Language: "en"}, {Index: 2, Codec: "hdmv_pgs_subtitle"}}
	j.Subtitles = []SubtitleTrack{
		{Blob: BlobRef{Hash: hash('d'), Size: 10}, Language: "en", Name: "English", Default: true, Stream: 1},
		{Blob: BlobRef{Hash: hash('e'), Size: 20}, Language: "fr-CA", Stream: -1},
	}
	j.Warnings = []string{"subtitle stream 2 (hdmv_pgs_subtitle) is image-based and was not converted"}
	return j
}

// TestSubmitSubtitles: a job's subtitle blobs are held by its origin,
// durable (replicated) while the job keeps its source, and go with it.
func TestSubmitSubtitles(t *testing.T) {
	s := NewState()
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: subtitledJob("j1"), Holders: []string{"n2", "n3"}, SubtitleHolders: []string{"n3"}})
	j := jobOf(t, s, "j1")
	if len(j.Subtitles) != 2 || j.Subtitles[1].Language != "fr-CA" || len(j.Warnings) != 1 || len(j.Source.Subtitles) != 2 {
		t.Fatalf("job %+v", j)
	}
	for _, h := range []string{hash('d'), hash('e')} {
		b, ok := s.Blob(h)
		if !ok || b.durable != 1 || !b.Nodes.Has("n1") || b.Nodes.Has("n2") || !b.Nodes.Has("n3") {
			t.Fatalf("subtitle blob %s: %+v (want durable, held by the origin and n3)", h[:4], b)
		}
	}
	if got := j.SubtitleFile(1); got != "subs/1-fr-CA.vtt" {
		t.Errorf("SubtitleFile = %s", got)
	}
	b, _ := json.Marshal(j)
	if !strings.Contains(string(b), `"warnings":["subtitle stream 2`) || !strings.Contains(string(b), `"stream":-1`) {
		t.Errorf("job JSON %s", b)
	}

	// Released with the source: keep_source:false once done, or expiry.
	d := subtitledJob("j2")
	d.DropSource = true
	s2 := NewState()
	runJob(t, s2, d)
	if _, ok := s2.Blob(hash('d')); ok {
		t.Fatal("keep_source:false kept a subtitle blob after done")
	}
	e := subtitledJob("j3")
	e.TTL = time.Minute
	s3 := NewState()
	runJob(t, s3, e)
	if _, ok := s3.Blob(hash('e')); !ok {
		t.Fatal("a done job let its subtitle blob go before expiry")
	}
	if err := applyAt(t, s3, OpJobExpire, jobOf(t, s3, "j3").FinishedAt.Add(time.Minute), JobRef{JobID: "j3"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s3.Blob(hash('e')); ok {
		t.Fatal("expiry kept a subtitle blob")
	}
}

func TestSubmitSubtitlesRefused(t *testing.T) {
	for name, mod := range map[string]func(*Job){
		"no blob":     func(j *Job) { j.Subtitles[0].Blob = BlobRef{} },
		"bad hash":    func(j *Job) { j.Subtitles[0].Blob.Hash = "../x" },
		"too many":    func(j *Job) { j.Subtitles = make([]SubtitleTrack, MaxSubtitleTracks+1) },
		"long name":   func(j *Job) { j.Subtitles[0].Name = strings.Repeat("n", 300) },
		"many warned": func(j *Job) { j.Warnings = make([]string, MaxJobWarnings+1) },
		"holder name": nil,
	} {
		s := NewState()
		j := subtitledJob("j1")
		b := SubmitJob{Job: j, SubtitleHolders: []string{""}}
		if mod != nil {
			mod(&b.Job)
			b.SubtitleHolders = nil
		}
		if err := apply(t, s, OpJobSubmit, b); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
		if s.BlobCount() != 0 {
			t.Errorf("%s: a refused submit left %d blobs", name, s.BlobCount())
		}
	}
}
