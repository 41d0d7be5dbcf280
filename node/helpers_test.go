package node

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/node/nodetest"
)

// testNode runs an in-process node on loopback with its own data dir.
type testNode struct {
	*Node
	base string
	stop func()
}

func startNode(t *testing.T, dataDir string, mod func(*Config)) *testNode {
	t.Helper()
	return startNodeWith(t, dataDir, mod, nil)
}

// startNodeWith is startNode with a hook that may change the built node
// before it runs (swap its transcoder, say).
func startNodeWith(t *testing.T, dataDir string, mod func(*Config), before func(*Node)) *testNode {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Name = "n1"
	cfg.DataDir = dataDir
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.BindAddr = "127.0.0.1"
	cfg.RaftPort, cfg.GossipPort, cfg.InternalPort = 0, 0, 0
	cfg.Slots = 2
	cfg.Preset = "ultrafast"
	cfg.Logger = slog.New(slog.NewJSONHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if mod != nil {
		mod(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	tn := &testNode{Node: n, base: "http://" + n.HTTPAddr()}
	var once bool
	tn.stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("node stopped with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("node did not stop within 30s")
		}
	}
	t.Cleanup(tn.stop)
	nodetest.WaitReady(t, tn.base, 15*time.Second)
	return tn
}

// testWriter sends logs to t.Log so they show only for failing tests.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var (
	waitFor = nodetest.WaitFor
	genClip = nodetest.GenClip
	upload  = nodetest.Upload
)

type apiJob struct {
	ID       string  `json:"id"`
	Name     string  `json:"name"`
	State    string  `json:"state"`
	Progress float64 `json:"progress"`
	Error    string  `json:"error"`
	Source   struct {
		Duration float64 `json:"duration"`
		Video    *struct {
			Width, Height int
			Duration      float64 `json:"duration"`
			Codec         string  `json:"codec"`
		} `json:"video"`
		Audio *struct{} `json:"audio"`
	} `json:"source"`
	Renditions []struct {
		Name          string
		Width, Height int
		Bitrate       int64
		Codec         string
		Quality       *struct {
			SSIM           float64 `json:"ssim"`
			PSNR           float64 `json:"psnr_db"`
			Frames         int     `json:"frames"`
			SampledFrames  int     `json:"sampled_frames"`
			SampledSeconds float64 `json:"sampled_seconds"`
			Bitrate        int64   `json:"bitrate"`
		} `json:"quality"`
	} `json:"renditions"`
	Chunks []struct {
		Index     int     `json:"index"`
		Duration  float64 `json:"duration"`
		Frames    int     `json:"frames"`
		EncodedBy string  `json:"encoded_by"`
		Attempts  int     `json:"attempts"`
	} `json:"chunks"`
	Outputs struct {
		HLS  string            `json:"hls"`
		DASH string            `json:"dash"`
		MP4  map[string]string `json:"mp4"`
	} `json:"outputs"`
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func submit(t *testing.T, base, path, options string) apiJob {
	t.Helper()
	code, body := upload(t, base, path, options)
	if code != http.StatusCreated {
		t.Fatalf("upload %s: %d %s", path, code, body)
	}
	var j apiJob
	if err := json.Unmarshal(body, &j); err != nil {
		t.Fatal(err)
	}
	return j
}

func getJob(t *testing.T, base, id string) (apiJob, int) {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/jobs/" + id)
	if err != nil {
		return apiJob{}, 0
	}
	defer resp.Body.Close()
	var j apiJob
	json.NewDecoder(resp.Body).Decode(&j)
	return j, resp.StatusCode
}

func waitJob(t *testing.T, base, id string, d time.Duration) apiJob {
	t.Helper()
	var j apiJob
	waitFor(t, d, "job "+id+" to finish", func() bool {
		j, _ = getJob(t, base, id)
		return j.State == "done" || j.State == "failed" || j.State == "canceled"
	})
	return j
}

// probeURL runs ffprobe on a URL served by the node and returns its JSON.
func probeURL(t *testing.T, url string, extra ...string) map[string]any {
	t.Helper()
	args := append([]string{"-v", "error", "-protocol_whitelist", "http,tcp,file", "-of", "json"}, extra...)
	args = append(args, url)
	out, err := exec.Command("ffprobe", args...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("ffprobe %s: %v %s", url, err, stderr)
	}
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// streamDuration is a stream's duration as ffprobe reports it.
func streamDurations(t *testing.T, url string) (video, audio float64, height int) {
	t.Helper()
	v := probeURL(t, url, "-show_streams", "-show_format")
	for _, s := range v["streams"].([]any) {
		m := s.(map[string]any)
		d, _ := strconv.ParseFloat(fmt.Sprint(m["duration"]), 64)
		switch m["codec_type"] {
		case "video":
			video = d
			height = int(m["height"].(float64))
		case "audio":
			audio = d
		}
	}
	return video, audio, height
}

// keyframeTimes lists the video keyframe timestamps of a URL, rounded to ms.
func keyframeTimes(t *testing.T, url string) []float64 {
	t.Helper()
	v := probeURL(t, url, "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags")
	var out []float64
	for _, p := range v["packets"].([]any) {
		m := p.(map[string]any)
		if strings.Contains(fmt.Sprint(m["flags"]), "K") {
			f, _ := strconv.ParseFloat(fmt.Sprint(m["pts_time"]), 64)
			out = append(out, math.Round(f*1000)/1000)
		}
	}
	return out
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// referenced is every blob the log keeps: those with a record, and the
// files the manifests list.
func referenced(t *testing.T, n *Node) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	var sets []cluster.BlobRef
	n.store.FSM().Read(func(st *cluster.State) {
		st.Blobs("", func(b *cluster.BlobHolders) bool {
			out[b.Hash] = true
			if b.Set() {
				sets = append(sets, b.Ref())
			}
			return true
		})
	})
	for _, s := range sets {
		m, err := n.manifests.Get(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range m.Files {
			out[f.Hash] = true
		}
	}
	return out
}
