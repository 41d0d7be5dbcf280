package cluster

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// richState is a state with one job of every kind, at log version v.
func richState(t *testing.T, v int) *State {
	t.Helper()
	s := NewState()
	mustApply(t, s, OpNodeJoin, NodeJoin{ID: "id-1", Name: "n1"})
	done := testJob("done", true)
	done.CallbackURL = "http://127.0.0.1:9/hook"
	runJob(t, s, done)
	if v >= LogV2 {
		mustApply(t, s, OpClusterUpgrade, ClusterUpgrade{Version: LogV2})
		d2 := testJob("done2", false)
		d2.SourceBlob.Hash = hash('2')
		runJob(t, s, d2)
	}
	run := testJob("run", true)
	run.SourceBlob.Hash = hash('f')
	runJobUntilPackaging(t, s, run)
	mustApply(t, s, OpJobRewind, JobRewind{JobID: "run", Chunks: []int{1}, Reason: "lost"})
	c := testJob("gone", false)
	c.SourceBlob.Hash = hash('c')
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: c})
	mustApply(t, s, OpJobCancel, JobRef{JobID: "gone"})
	mustApply(t, s, OpBlobAdd, BlobLocation{Blob: BlobRef{Hash: hash('f')}, Node: "n2"})
	return s
}

// TestSnapshotFormats: a state that writes log version 1 snapshots in the
// first release's format (so that a node of that release restores what a
// new leader sends it) and one at version 2 in the streamed format; both
// restore to the same state, and a cut-off or unknown snapshot is refused.
func TestSnapshotFormats(t *testing.T) {
	for _, v := range []int{LogV1, LogV2} {
		s := richState(t, v)
		var b bytes.Buffer
		if _, err := s.freeze().WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		raw := b.Bytes()
		if v == LogV1 {
			// What the first release reads: one JSON object, chunks inline.
			var old struct {
				V     int `json:"v"`
				State struct {
					Jobs  map[string]Job  `json:"jobs"`
					Tasks map[string]Task `json:"tasks"`
					Blobs map[string]struct {
						Size  int64           `json:"size"`
						Nodes map[string]bool `json:"nodes"`
					} `json:"blobs"`
					Nodes map[string]string `json:"nodes"`
				} `json:"state"`
			}
			if err := json.Unmarshal(raw, &old); err != nil {
				t.Fatalf("version 1 snapshot is not the first release's JSON: %v", err)
			}
			if old.V != 1 || len(old.State.Jobs["run"].Chunks) != 2 || old.State.Nodes["id-1"] != "n1" ||
				!old.State.Blobs[hash('f')].Nodes["n2"] || old.State.Tasks[TaskID("run", TaskEncode, 1)].State != TaskPending {
				t.Fatalf("version 1 snapshot: %+v", old)
			}
		} else if raw[0] != 0x1f || raw[1] != 0x8b {
			t.Fatalf("version 2 snapshot is not gzip: % x", raw[:4])
		}
		back, err := ReadState(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if a, b := dump(t, s), dump(t, back); a != b {
			t.Fatalf("v%d: restored state differs:\n%s\n%s", v, a, b)
		}
		if err := back.checkRefs(); err != nil {
			t.Fatal(err)
		}
		// The indexes come back too.
		var legacy []string
		back.LegacyJobs(func(j *Job) bool { legacy = append(legacy, j.ID); return true })
		slices.Sort(legacy)
		if want := "done gone"; strings.Join(legacy, " ") != want && v == LogV1 {
			t.Fatalf("legacy jobs after restore: %v", legacy)
		}
		if p, err := back.List(ListQuery{State: JobTranscoding}); err != nil || len(p.Jobs) != 1 || p.Jobs[0].ID != "run" {
			t.Fatalf("running jobs after restore: %+v %v", p, err)
		}
	}

	s := richState(t, LogV2)
	var b bytes.Buffer
	if _, err := s.freeze().WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	// Cut off: the end record is missing.
	zr, _ := gzip.NewReader(bytes.NewReader(b.Bytes()))
	var plain bytes.Buffer
	plain.ReadFrom(zr)
	lines := strings.SplitAfter(strings.TrimSpace(plain.String()), "\n")
	var cut bytes.Buffer
	zw := gzip.NewWriter(&cut)
	zw.Write([]byte(strings.Join(lines[:len(lines)-1], "")))
	zw.Close()
	if _, err := ReadState(&cut); err == nil || !strings.Contains(err.Error(), "cut off") {
		t.Fatalf("a cut-off snapshot: %v", err)
	}
	for _, bad := range []string{`{"v":7,"state":{}}`, `not json`, ``} {
		if _, err := ReadState(strings.NewReader(bad)); err == nil {
			t.Errorf("snapshot %q accepted", bad)
		}
	}
}
