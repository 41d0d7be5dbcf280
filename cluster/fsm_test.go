package cluster

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestOnJobFinishedReportsFreshEntriesOnly: every replica reports a job that
// finishes in a new entry once, and a replay of old entries (a restarted
// node) reports nothing.
func TestOnJobFinishedReportsFreshEntriesOnly(t *testing.T) {
	cases := []struct {
		name string
		at   time.Time
		want int
	}{
		{"fresh", time.Now(), 1},
		{"replayed", time.Now().Add(-time.Hour), 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFSM(nil)
			var got []Job
			f.OnJobFinished(func(j Job) { got = append(got, j) })
			index := uint64(0)
			applyAt := func(op Op, body any) {
				t.Helper()
				data, err := EncodeCommand(op, tc.at, body)
				if err != nil {
					t.Fatal(err)
				}
				index++
				if err, _ := f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data}).(error); err != nil {
					t.Fatalf("%s: %v", op, err)
				}
			}
			applyAt(OpJobSubmit, SubmitJob{Job: testJob("j1", false)})
			applyAt(OpJobSubmit, SubmitJob{Job: testJob("j2", false)})
			applyAt(OpJobCancel, JobRef{JobID: "j1", Reason: "user"})
			if len(got) != tc.want {
				t.Fatalf("reported %d jobs, want %d", len(got), tc.want)
			}
			if tc.want > 0 && (got[0].ID != "j1" || got[0].State != JobCanceled) {
				t.Fatalf("reported %s in %s, want j1 canceled", got[0].ID, got[0].State)
			}
			// Nothing is left over for the next entry to report twice.
			applyAt(OpJobSubmit, SubmitJob{Job: testJob("j3", false)})
			if len(got) != tc.want {
				t.Fatalf("after the next entry: reported %d jobs, want %d", len(got), tc.want)
			}
		})
	}
}
