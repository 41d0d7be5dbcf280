package cluster

import (
	"errors"
	"strings"
	"testing"
)

func TestValidJobID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"abcdefghij234567", true},
		{"job-1", true},
		{"A_b-9", true},
		{strings.Repeat("a", 64), true},
		{"", false},
		{strings.Repeat("a", 65), false},
		{".", false},
		{"..", false},
		{"../x", false},
		{"a/b", false},
		{`a\b`, false},
		{"/abs", false},
		{"a\x00b", false},
		{"a%2fb", false},
		{"a%2e%2e", false},
		{"a b", false},
		{"a.b", false},
		{"é", false},
		{"a\nb", false},
	} {
		if got := ValidJobID(tc.id); got != tc.ok {
			t.Errorf("ValidJobID(%q) = %v, want %v", tc.id, got, tc.ok)
		}
	}
}

func TestCheckFilePath(t *testing.T) {
	for _, tc := range []struct {
		rel string
		ok  bool
	}{
		{"master.m3u8", true},
		{"manifest.mpd", true},
		{"seg-0-00001.m4s", true},
		{"mp4/720p.mp4", true},
		{"mp4/360p@600k.mp4", true},
		{"", false},
		{"/etc/passwd", false},
		{"../secret", false},
		{"mp4/../../x", false},
		{"..", false},
		{".", false},
		{"./master.m3u8", false},
		{"mp4/./a.mp4", false},
		{"mp4//a.mp4", false},
		{"mp4/", false},
		{`..\..\windows`, false},
		{`mp4\a.mp4`, false},
		{"a\x00.mp4", false},
		{"a\n.mp4", false},
		{"a\x7f.mp4", false},
		{"..%2f..%2fetc", false},
		{"%2e%2e/x", false},
		{"a%00", false},
		{"c:/x", false},
		{"\xff\xfe", false},
		{strings.Repeat("a", MaxFilePathLen), true},
		{strings.Repeat("a", MaxFilePathLen+1), false},
	} {
		err := CheckFilePath(tc.rel)
		if (err == nil) != tc.ok {
			t.Errorf("CheckFilePath(%q) = %v, want ok=%v", tc.rel, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckFilePath(%q) = %v, does not wrap ErrInvalid", tc.rel, err)
		}
	}
}

// TestStateRefusesBadNames: a command (from a peer with the cluster key,
// or a damaged log) cannot bring a malformed job ID, source hash or
// published file path into the state, where it would later name a work
// directory or a served file.
func TestStateRefusesBadNames(t *testing.T) {
	for _, id := range []string{"../x", "a/b", `a\b`, "a\x00", strings.Repeat("x", 65)} {
		s := NewState()
		if err := apply(t, s, OpJobSubmit, SubmitJob{Job: testJob(id, false)}); !errors.Is(err, ErrInvalid) {
			t.Errorf("submit %q: %v", id, err)
		}
		if s.JobCount() != 0 {
			t.Errorf("submit %q changed the state", id)
		}
	}
	s := NewState()
	bad := testJob("j1", false)
	bad.SourceBlob.Hash = "../../etc/passwd"
	if err := apply(t, s, OpJobSubmit, SubmitJob{Job: bad}); !errors.Is(err, ErrInvalid) {
		t.Errorf("submit with a bad hash: %v", err)
	}

	// A package result with a traversal path is refused and the job stays
	// where it was.
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: testJob("j1", false)})
	split := TaskID("j1", TaskSplit, 0)
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: split, Node: "n1", Term: 1, Attempt: 1})
	mustApply(t, s, OpTaskDone, TaskResult{TaskID: split, Node: "n1", Attempt: 1,
		Chunks: []Chunk{{Source: BlobRef{Hash: hash('b'), Size: 1}, Duration: 12, Frames: 300}}})
	enc := TaskID("j1", TaskEncode, 0)
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: enc, Node: "n1", Term: 1, Attempt: 1})
	mustApply(t, s, OpTaskDone, TaskResult{TaskID: enc, Node: "n1", Attempt: 1,
		Outputs: []BlobRef{{Hash: hash('c'), Size: 1}, {Hash: hash('d'), Size: 1}}})
	pkg := TaskID("j1", TaskPackage, 0)
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: pkg, Node: "n1", Term: 1, Attempt: 1})
	for _, files := range []map[string]BlobRef{
		{"master.m3u8": {Hash: hash('e'), Size: 1}, "../escape": {Hash: hash('f'), Size: 1}},
		{"master.m3u8": {Hash: hash('e'), Size: 1}, "/abs": {Hash: hash('f'), Size: 1}},
		{"master.m3u8": {Hash: "nothex", Size: 1}},
	} {
		err := apply(t, s, OpTaskDone, TaskResult{TaskID: pkg, Node: "n1", Attempt: 1,
			HLS: "master.m3u8", DASH: "manifest.mpd", Files: files})
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("package with %v: %v", files, err)
		}
	}
	if j := jobOf(t, s, "j1"); j.State != JobPackaging || len(j.Outputs) != 0 {
		t.Errorf("job after refused package results: %s, %d outputs", j.State, len(j.Outputs))
	}
}
