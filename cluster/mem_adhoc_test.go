package cluster

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"
)

func TestAdhocMemory(t *testing.T) {
	const n = 20000
	s := NewState()
	mustApply(t, s, OpClusterUpgrade, ClusterUpgrade{Version: LogV2})
	rends := []Rendition{{"1080p", 1920, 1080, 5000000, "h264"}, {"720p", 1280, 720, 3000000, "h264"}, {"540p", 960, 540, 2000000, "h264"}, {"480p", 854, 480, 1200000, "h264"}, {"360p", 640, 360, 800000, "h264"}, {"240p", 426, 240, 400000, "h264"}}
	q := make([]Quality, 6)
	for i := range n {
		j := testJob(fmt.Sprintf("hist%08d", i), true)
		j.SourceBlob.Hash = fmt.Sprintf("%064x", i+1)
		j.Renditions = rends
		j.Source.Format = "mov,mp4,m4a,3gp,3g2,mj2"
		apply := func(op Op, body any) {
			data, _ := EncodeCommandV(2, op, t0.Add(time.Duration(i)*time.Second), body)
			c, _ := DecodeCommand(data)
			if err := s.Apply(c); err != nil {
				t.Fatal(op, err)
			}
		}
		apply(OpJobSubmit, SubmitJob{Job: j})
		apply(OpTaskAssign, AssignTask{TaskID: TaskID(j.ID, TaskSplit, 0), Node: "gosty-0", Attempt: 1})
		apply(OpTaskAssign, AssignTask{TaskID: TaskID(j.ID, TaskAudio, 0), Node: "gosty-0", Attempt: 1})
		apply(OpTaskDone, TaskResult{TaskID: TaskID(j.ID, TaskSplit, 0), Node: "gosty-0", Attempt: 1, Chunks: []Chunk{{Duration: 6, Source: BlobRef{Hash: fmt.Sprintf("%064x", 1<<30+i), Size: 5}}}})
		apply(OpTaskDone, TaskResult{TaskID: TaskID(j.ID, TaskAudio, 0), Node: "gosty-0", Attempt: 1, Audio: BlobRef{Hash: fmt.Sprintf("%064x", 1<<31+i), Size: 5}})
		apply(OpTaskAssign, AssignTask{TaskID: TaskID(j.ID, TaskEncode, 0), Node: "gosty-0", Attempt: 1})
		outs := make([]BlobRef, 6)
		for r := range outs {
			outs[r] = BlobRef{Hash: fmt.Sprintf("%064x", 1<<32+i*8+r), Size: 5}
		}
		apply(OpTaskDone, TaskResult{TaskID: TaskID(j.ID, TaskEncode, 0), Node: "gosty-0", Attempt: 1, Outputs: outs})
		apply(OpTaskAssign, AssignTask{TaskID: TaskID(j.ID, TaskPackage, 0), Node: "gosty-0", Attempt: 1})
		apply(OpTaskDone, TaskResult{TaskID: TaskID(j.ID, TaskPackage, 0), Node: "gosty-0", Attempt: 1, HLS: "master.m3u8", DASH: "manifest.mpd",
			MP4: map[string]string{"1080p": "mp4/1080p.mp4", "720p": "mp4/720p.mp4", "540p": "mp4/540p.mp4", "480p": "mp4/480p.mp4", "360p": "mp4/360p.mp4", "240p": "mp4/240p.mp4"},
			Quality: q, Manifest: BlobRef{Hash: fmt.Sprintf("%064x", 1<<33+i), Size: 700}, Published: 12345})
	}
	var b bytes.Buffer
	s.freeze().WriteTo(&b)
	raw := b.Bytes()
	s = nil
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cf, _ := os.Create("/tmp/restore.prof")
	pprof.StartCPUProfile(cf)
	t0 := time.Now()
	st, err := ReadState(bytes.NewReader(raw))
	pprof.StopCPUProfile()
	cf.Close()
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	runtime.GC()
	runtime.ReadMemStats(&m1)
	t.Logf("%d jobs: snapshot %d B (%.0f/job), restore %v (%.1f µs/job), heap %.0f B/job", n, len(raw), float64(len(raw))/n, took, float64(took.Microseconds())/n, float64(m1.HeapAlloc-m0.HeapAlloc)/n)
	f, _ := os.Create("/tmp/heap.prof")
	pprof.WriteHeapProfile(f)
	f.Close()
	runtime.KeepAlive(st)
}
