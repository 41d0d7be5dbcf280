package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// fairJob adds a job in transcoding with n pending encode tasks.
func fairJob(s *State, id string, age int, prio Priority, sub string, n int) {
	j := &Job{ID: id, State: JobTranscoding, CreatedAt: t0.Add(time.Duration(age) * time.Second), Priority: prio, Submitter: sub}
	s.putJob(nil, j)
	for i := range n {
		s.putChunk(nil, &Chunk{JobID: id, Index: i, Duration: 2}, true)
		s.tasks.ReplaceOrInsert(&Task{ID: TaskID(id, TaskEncode, i), JobID: id, Kind: TaskEncode, Chunk: i, State: TaskPending})
	}
}

func TestFairOrder(t *testing.T) {
	type job struct {
		id      string
		age     int
		prio    Priority
		sub     string
		n       int
		running int // of its tasks already assigned
	}
	for _, tc := range []struct {
		name  string
		jobs  []job
		slots int
		want  string // assigned tasks, job:chunk, in order
	}{
		{"fifo within one submitter", []job{{"a", 0, "", "", 2, 0}, {"b", 1, "", "", 2, 0}}, 3, "a:0 a:1 b:0"},
		{"high overtakes older normal and low", []job{{"low", 0, PriorityLow, "", 3, 0}, {"norm", 1, "", "", 1, 0}, {"hi", 2, PriorityHigh, "", 2, 0}}, 4, "hi:0 hi:1 norm:0 low:0"},
		{"normal and the empty priority are one class", []job{{"a", 0, PriorityNormal, "", 1, 0}, {"b", 1, "", "", 1, 0}}, 2, "a:0 b:0"},
		{"submitters take turns", []job{{"big", 0, "", "u1", 5, 0}, {"small", 1, "", "u2", 2, 0}}, 4, "big:0 small:0 big:1 small:1"},
		{"fewest running goes first", []job{{"big", 0, "", "u1", 5, 2}, {"small", 1, "", "u2", 2, 0}}, 3, "small:0 small:1 big:2"},
		{"three submitters, one slot each", []job{{"x", 0, "", "u1", 3, 0}, {"y", 1, "", "u2", 3, 0}, {"z", 2, "", "u3", 3, 0}}, 3, "x:0 y:0 z:0"},
		{"class before fairness", []job{{"a", 0, PriorityLow, "u1", 2, 0}, {"b", 1, PriorityNormal, "u1", 2, 3}}, 2, "b:3 b:4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewState()
			for _, j := range tc.jobs {
				fairJob(s, j.id, j.age, j.prio, j.sub, j.n+j.running)
				for i := range j.running {
					tk := *taskOf(s, TaskID(j.id, TaskEncode, i))
					tk.State, tk.Node = TaskAssigned, "elsewhere"
					s.tasks.ReplaceOrInsert(&tk)
				}
			}
			var got []string
			for _, a := range Assignments(s, []Worker{{Name: "n1", Slots: tc.slots}}) {
				tk := taskOf(s, a.TaskID)
				got = append(got, fmt.Sprintf("%s:%d", tk.JobID, tk.Chunk))
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Fatalf("got %q, want %q", g, tc.want)
			}
		})
	}
}
