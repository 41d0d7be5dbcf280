package retention

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gosty/gosty/cluster"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// finished is a state (no raft) with n jobs, j0 … j(n-1), each canceled
// a minute after the one before, from t0 on.
func finished(t *testing.T, n int) *cluster.FSM {
	t.Helper()
	fsm := cluster.NewFSM(slog.New(slog.DiscardHandler))
	index := uint64(0)
	apply := func(op cluster.Op, at time.Time, body any) {
		data, err := cluster.EncodeCommand(op, at, body)
		if err != nil {
			t.Fatal(err)
		}
		index++
		if res := fsm.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data}); res != nil {
			if err, ok := res.(error); ok {
				t.Fatalf("%s: %v", op, err)
			}
		}
	}
	for i := range n {
		id := fmt.Sprintf("j%d", i)
		at := t0.Add(time.Duration(i) * time.Minute)
		apply(cluster.OpJobSubmit, at, cluster.SubmitJob{Job: cluster.Job{
			ID: id, Name: "clip.mp4", Origin: "n1",
			SourceBlob: cluster.BlobRef{Hash: strings.Repeat(fmt.Sprint(i%10), 64), Size: 100},
			Source:     cluster.Probe{Duration: 12, Video: &cluster.VideoStream{Width: 640, Height: 360, FrameRate: 25, Duration: 12}},
			Renditions: []cluster.Rendition{{Name: "360p", Width: 640, Height: 360}},
		}})
		apply(cluster.OpJobCancel, at, cluster.JobRef{JobID: id})
	}
	return fsm
}

// TestBeyondHistory: the history bounds leave out the oldest finished
// jobs beyond the count, and those older than the age, oldest first.
func TestBeyondHistory(t *testing.T) {
	fsm := finished(t, 5)
	now := t0.Add(10 * time.Minute) // j0 is 10 minutes old, j4 6
	for _, c := range []struct {
		name string
		h    History
		want []string
	}{
		{"count", History{Jobs: 3}, []string{"j0", "j1"}},
		{"age", History{Age: 8*time.Minute + time.Second}, []string{"j0", "j1"}},
		{"count and age", History{Jobs: 4, Age: 9*time.Minute + time.Second}, []string{"j0"}},
		{"within both", History{Jobs: 5, Age: time.Hour}, nil},
	} {
		if got := c.h.beyond(fsm, now); !slices.Equal(got, c.want) {
			t.Errorf("%s: beyond the history %v, want %v", c.name, got, c.want)
		}
	}
}
