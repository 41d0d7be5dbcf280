package cluster

import (
	"errors"
	"testing"
)

// TestThumbsKeptUntilPackaging: an encode's thumbnail bundle is referenced
// by its chunk (held by the encoding node) until the job finishes, released
// by a rewind of the chunk, and gone from the compact finished job, which
// carries only the poster and storyboard paths; an encode entry written
// before the field existed still applies.
func TestThumbsKeptUntilPackaging(t *testing.T) {
	s := upgraded(t)
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: testJob("j", false)})
	split := TaskID("j", TaskSplit, 0)
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: split, Node: "n1", Attempt: 1})
	mustApply(t, s, OpTaskDone, TaskResult{TaskID: split, Node: "n1", Attempt: 1, Chunks: []Chunk{
		{Start: 0, Duration: 6, Frames: 150, Source: BlobRef{Hash: hash('b'), Size: 10}},
		{Start: 6, Duration: 6, Frames: 150, Source: BlobRef{Hash: hash('c'), Size: 10}},
	}})
	enc := func(i int, attempt int, thumbs BlobRef) error {
		id := TaskID("j", TaskEncode, i)
		if tk := taskOf(s, id); tk.State != TaskAssigned || tk.Attempt != attempt {
			mustApply(t, s, OpTaskAssign, AssignTask{TaskID: id, Node: "n1", Attempt: attempt})
		}
		return apply(t, s, OpTaskDone, TaskResult{TaskID: id, Node: "n1", Attempt: attempt,
			Outputs: []BlobRef{{Hash: hash('d'), Size: 5}, {Hash: hash('e'), Size: 5}}, Thumbs: thumbs})
	}
	if err := enc(0, 1, BlobRef{Hash: "nothex", Size: 1}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("malformed thumbs blob: %v", err)
	}
	if err := enc(0, 1, BlobRef{Hash: hash('f'), Size: 7}); err != nil {
		t.Fatal(err)
	}
	if b, ok := s.Blob(hash('f')); !ok || !b.Nodes.Has("n1") || b.Durable() {
		t.Fatalf("thumbs blob record %+v %v: want referenced, held by n1, intermediate", b, ok)
	}
	if c, _ := s.Chunk("j", 0); c.Thumbs.Hash != hash('f') {
		t.Fatalf("chunk 0 thumbs %+v", c.Thumbs)
	}
	// A rewind of the chunk lets its bundle go with its outputs.
	mustApply(t, s, OpJobRewind, JobRewind{JobID: "j", Chunks: []int{0}, Reason: "lost"})
	if _, ok := s.Blob(hash('f')); ok {
		t.Fatal("thumbs blob still referenced after its chunk was rewound")
	}
	if err := enc(0, 2, BlobRef{Hash: hash('f'), Size: 7}); err != nil {
		t.Fatal(err)
	}
	if err := enc(1, 1, BlobRef{}); err != nil { // an encode without thumbnails
		t.Fatal(err)
	}
	pk := TaskID("j", TaskPackage, 0)
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: pk, Node: "n1", Attempt: 1})
	r := packageResult(s, pk)
	r.Poster, r.Storyboard = "poster.jpg", "storyboard/storyboard.vtt"
	bad := r
	bad.Storyboard = "../x.vtt"
	if err := apply(t, s, OpTaskDone, bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("storyboard path outside the job: %v", err)
	}
	mustApply(t, s, OpTaskDone, r)
	j := jobOf(t, s, "j")
	if j.State != JobDone || !j.Compact() || j.Poster != "poster.jpg" || j.Storyboard != "storyboard/storyboard.vtt" {
		t.Fatalf("done job %+v", j)
	}
	if _, ok := s.Blob(hash('f')); ok {
		t.Fatal("thumbs blob still referenced by a finished job")
	}
	if a, b := dump(t, s), dump(t, roundTrip(t, s)); a != b {
		t.Fatalf("snapshot round trip differs:\n%s\n%s", a, b)
	}
}
