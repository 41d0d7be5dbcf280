package transcoder

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gosty/gosty/transcoder/confine"
)

// probeDoc builds ffprobe-shaped JSON for parseProbe.
func probeDoc(format, duration string, streams ...map[string]any) []byte {
	for i, s := range streams {
		if _, ok := s["index"]; !ok {
			s["index"] = i
		}
	}
	b, err := json.Marshal(map[string]any{
		"streams": streams,
		"format":  map[string]any{"format_name": format, "duration": duration, "size": "1000", "bit_rate": "8000"},
	})
	if err != nil {
		panic(err)
	}
	return b
}

func vStream(w, h int, rate, dur string) map[string]any {
	return map[string]any{"codec_type": "video", "codec_name": "h264", "width": w, "height": h,
		"avg_frame_rate": rate, "r_frame_rate": rate, "duration": dur}
}

func aStream() map[string]any {
	return map[string]any{"codec_type": "audio", "codec_name": "aac", "channels": 2, "sample_rate": "48000", "duration": "10"}
}

func with(s map[string]any, kv ...any) map[string]any {
	for i := 0; i+1 < len(kv); i += 2 {
		s[kv[i].(string)] = kv[i+1]
	}
	return s
}

// TestProbeLimits checks each limit and stream rule of parseProbe on
// ffprobe-shaped JSON, at and just beyond the bound.
func TestProbeLimits(t *testing.T) {
	mp4 := "mov,mp4,m4a,3gp,3g2,mj2"
	many := func(n int) []map[string]any {
		s := []map[string]any{vStream(640, 360, "25/1", "10")}
		for len(s) < n {
			s = append(s, aStream())
		}
		return s
	}
	cases := []struct {
		name   string
		doc    []byte
		reason string // "" = accepted
		check  func(t *testing.T, p *Probe)
	}{
		{"baseline", probeDoc(mp4, "10", vStream(640, 360, "25/1", "10"), aStream()), "", func(t *testing.T, p *Probe) {
			if p.Video.Width != 640 || p.Audio == nil || p.Duration != 10 {
				t.Errorf("%+v", p)
			}
		}},
		{"streams at the limit", probeDoc(mp4, "10", many(maxStreams)...), "", nil},
		{"streams over the limit", probeDoc(mp4, "10", many(maxStreams+1)...), "33 streams; at most 32", nil},
		{"side at the limit", probeDoc(mp4, "10", vStream(8192, 16, "25/1", "10")), "", nil},
		{"width over the limit", probeDoc(mp4, "10", vStream(8194, 16, "25/1", "10")), "largest supported side is 8192", nil},
		{"height over the limit", probeDoc(mp4, "10", vStream(16, 8194, "25/1", "10")), "largest supported side", nil},
		{"over the limit after rotation", probeDoc(mp4, "10", with(vStream(8194, 16, "25/1", "10"), "tags", map[string]string{"rotate": "90"})), "16x8194", nil},
		{"pixels at the limit", probeDoc(mp4, "10", vStream(8192, 4320, "25/1", "10")), "", nil},
		{"pixels over the limit", probeDoc(mp4, "10", vStream(8192, 4322, "25/1", "10")), "largest supported picture", nil},
		{"no picture size", probeDoc(mp4, "10", vStream(0, 0, "25/1", "10")), "no picture size", nil},
		{"duration at the limit", probeDoc(mp4, "86400", vStream(640, 360, "25/1", "86400")), "", nil},
		{"duration over the limit", probeDoc(mp4, "86401", vStream(640, 360, "25/1", "86401")), "the limit is 24 h", nil},
		{"declared file duration over the limit", probeDoc(mp4, "4294967", vStream(640, 360, "25/1", "2")), "declares a duration", nil},
		{"no duration", probeDoc(mp4, "N/A", vStream(640, 360, "25/1", "N/A")), "duration is unknown", nil},
		{"frame rate at the limit", probeDoc(mp4, "10", vStream(640, 360, "240/1", "10")), "", nil},
		{"frame rate over the limit", probeDoc(mp4, "10", vStream(640, 360, "241/1", "10")), "above the limit of 240", nil},
		{"frame rate 0/0", probeDoc(mp4, "10", vStream(640, 360, "0/0", "10")), "frame rate is unknown", nil},
		{"frame rate overflows", probeDoc(mp4, "10", vStream(640, 360, "1e308/1e-308", "10")), "frame rate is unknown", nil},
		{"playlist format", probeDoc("hls", "10", vStream(640, 360, "25/1", "10")), "container format \"hls\" is not supported", nil},
		{"concat format", probeDoc("concat", "10", vStream(640, 360, "25/1", "10")), "not supported", nil},
		{"audio only", probeDoc(mp4, "10", aStream()), "no video stream", nil},
		{"subtitle only", probeDoc("matroska,webm", "10", map[string]any{"codec_type": "subtitle", "codec_name": "ass"}), "no video stream", nil},
		{"cover picture only", probeDoc(mp4, "10", with(vStream(64, 64, "0/0", ""), "codec_name", "png", "disposition", map[string]int{"attached_pic": 1}), aStream()), "no video stream", nil},
		{"subtitles, data and attachments are ignored", probeDoc("matroska,webm", "10",
			map[string]any{"codec_type": "subtitle", "codec_name": "ass"},
			map[string]any{"codec_type": "attachment", "codec_name": "ttf"},
			map[string]any{"codec_type": "data", "codec_name": "bin_data"},
			vStream(640, 360, "25/1", "10"),
			aStream()), "", func(t *testing.T, p *Probe) {
			if p.Video.Index != 3 || p.Audio == nil || p.Audio.Index != 4 {
				t.Errorf("video %+v audio %+v", p.Video, p.Audio)
			}
		}},
		{"cover picture and still track before the video", probeDoc("matroska,webm", "10",
			with(vStream(64, 64, "0/0", ""), "codec_name", "mjpeg", "disposition", map[string]int{"attached_pic": 1}),
			with(vStream(64, 64, "25/1", "10"), "codec_name", "png"),
			vStream(640, 360, "25/1", "10")), "", func(t *testing.T, p *Probe) {
			if p.Video.Index != 2 || p.Video.Codec != "h264" {
				t.Errorf("picked %+v", p.Video)
			}
		}},
		{"absurd rotation", probeDoc(mp4, "10", with(vStream(640, 360, "25/1", "10"),
			"side_data_list", []map[string]any{{"side_data_type": "Display Matrix", "rotation": -1e300}})), "", func(t *testing.T, p *Probe) {
			if p.Video.Rotation%90 != 0 || p.Video.Rotation < 0 || p.Video.Rotation >= 360 {
				t.Errorf("rotation %d", p.Video.Rotation)
			}
		}},
		{"garbage sizes", probeDoc(mp4, "10", with(vStream(640, 360, "25/1", "10"), "bit_rate", "1e300"),
			with(aStream(), "sample_rate", "-5", "channels", -2)), "", func(t *testing.T, p *Probe) {
			if p.Video.BitRate != 0 || p.Audio.SampleRate != 0 || p.Audio.Channels != 0 {
				t.Errorf("video %+v audio %+v", p.Video, p.Audio)
			}
		}},
		{"audio and video share an index", probeDoc(mp4, "10", vStream(640, 360, "25/1", "10"), with(aStream(), "index", 0)), "bad index", nil},
		{"negative stream index", probeDoc(mp4, "10", with(vStream(640, 360, "25/1", "10"), "index", -1)), "bad index", nil},
		{"not json", []byte("{"), "decode ffprobe json", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parseProbe(tc.doc)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if tc.check != nil {
					tc.check(t, p)
				}
				if _, err := json.Marshal(p); err != nil {
					t.Fatalf("probe does not marshal: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %+v, want a refusal mentioning %q", p, tc.reason)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("err %q, want it to mention %q", err, tc.reason)
			}
		})
	}
}

// TestSniffHead checks the classification of an upload's first bytes.
func TestSniffHead(t *testing.T) {
	tar := make([]byte, 600)
	copy(tar, "etc/passwd")
	copy(tar[257:], "ustar\x0000")
	tar[100] = 0
	cases := []struct {
		name, head, reason string // reason "" = passed on to ffprobe
	}{
		{"empty", "", "empty"},
		{"hls", "#EXTM3U\n#EXTINF:1,\nhttp://127.0.0.1:1/x.ts\n", "HLS playlist"},
		{"hls after a BOM and blank lines", "\ufeff\r\n\n  #EXTM3U\n", "HLS playlist"},
		{"ffconcat", "ffconcat version 1.0\nfile /etc/passwd\n", "concat list"},
		{"concat without header", "file 'http://127.0.0.1:1/x'\n", "text"},
		{"dash", `<?xml version="1.0"?><MPD/>`, "XML"},
		{"dash without prolog", `<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"/>`, "XML"},
		{"sdp", "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\nc=IN IP4 127.0.0.1\r\nm=video 5004 RTP/AVP 96\r\n", "SDP"},
		{"ass", "[Script Info]\nScriptType: v4.00+\n", "subtitle"},
		{"webvtt", "WEBVTT\n\n00:01.000 --> 00:02.000\nhi\n", "subtitle"},
		{"srt", "1\n00:00:01,000 --> 00:00:02,000\nhello\n", "text"},
		{"zip", "PK\x03\x04\x14\x00\x00\x00\x08\x00", "zip archive"},
		{"gzip", "\x1f\x8b\x08\x00\x00\x00\x00\x00", "gzip archive"},
		{"tar", string(tar), "tar archive"},
		{"pdf", "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"},
		{"elf", "\x7fELF\x02\x01\x01\x00", "program"},
		{"y4m passes", "YUV4MPEG2 W64 H64 F25:1\nFRAME\n", ""},
		{"mp4 passes", "\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41", ""},
		{"mpegts passes", "\x47\x40\x00\x10\x00\x00\xb0\x0d\x00\x01\xc1\x00\x00\x00\x01\xf0\x00", ""},
		{"png passes to the allowlist", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := sniffHead([]byte(tc.head))
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !IsMediaError(err) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("err %v, want a MediaError mentioning %q", err, tc.reason)
			}
		})
	}
}

// TestProbeHostileFiles runs the real ffprobe on generated files beyond the
// limits or outside the allowlist.
func TestProbeHostileFiles(t *testing.T) {
	tr := newTestTranscoder(t)
	dir := t.TempDir()
	good := genClip(t, dir, "good", clipSpec{W: 160, H: 90, Rate: 25, Seconds: 1, Audio: true})
	streams := func(n int) []string {
		args := []string{"-i", good, "-map", "0:v"}
		for range n - 1 {
			args = append(args, "-map", "0:a")
		}
		return append(args, "-c", "copy")
	}
	longMP4, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	patchDurations(t, longMP4)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	gen := func(name string, args ...string) string {
		mustGen(t, dir, name, args...)
		return filepath.Join(dir, name)
	}
	cases := []struct {
		name, path, reason string
	}{
		{"33 streams", gen("s33.mkv", streams(33)...), "has 33 streams; at most 32"},
		{"40 streams", gen("s40.mkv", streams(40)...), "more than 32 streams"},
		{"wider than 8192", gen("wide.mp4", "-f", "lavfi", "-i", "color=size=8320x32:rate=1:duration=1", "-c:v", "libx264", "-preset", "ultrafast"), "largest supported side"},
		{"crafted y4m header 9000 wide", write("big.y4m", []byte("YUV4MPEG2 W9000 H16 F25:1 Ip A1:1 C420jpeg\nFRAME\n"+strings.Repeat("x", 64))), "largest supported side"},
		{"crafted y4m header 100000x100000", write("huge.y4m", []byte("YUV4MPEG2 W100000 H100000 F25:1 Ip A1:1 C420jpeg\nFRAME\nxx")), "is invalid"},
		{"300 fps", gen("fast.mp4", "-f", "lavfi", "-i", "testsrc2=size=64x36:rate=300", "-t", "0.2", "-c:v", "libx264", "-preset", "ultrafast"), "above the limit of 240"},
		{"declared duration of 49 days", write("long.mp4", longMP4), "the limit is 24 h"},
		{"audio only", gen("audio.m4a", "-i", good, "-map", "0:a", "-c", "copy"), "no video stream"},
		{"mp4 without frames", gen("empty.mp4", "-f", "lavfi", "-i", "testsrc2=size=64x36:rate=10", "-frames:v", "0"), "no video stream"},
		{"utf-16 subtitles", write("sub.srt", utf16("1\n00:00:01,000 --> 00:00:02,000\n/etc/passwd\n\n")), "container format srt is not accepted"},
		{"png image", gen("img.png", "-f", "lavfi", "-i", "testsrc2=size=64x64", "-frames:v", "1"), "container format png_pipe is not accepted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tr.Probe(context.Background(), tc.path)
			if !IsMediaError(err) || !strings.Contains(err.(*MediaError).Reason, tc.reason) {
				t.Fatalf("err %v, want a MediaError mentioning %q", err, tc.reason)
			}
			if strings.Contains(err.(*MediaError).Reason, dir) {
				t.Errorf("reason leaks a local path: %v", err)
			}
		})
	}

	t.Run("file size limit", func(t *testing.T) {
		small, err := New(Config{MaxFileBytes: 1000})
		if err != nil {
			t.Fatal(err)
		}
		_, err = small.Probe(context.Background(), good)
		if !IsMediaError(err) || !strings.Contains(err.Error(), "the limit is 1000") {
			t.Fatalf("err %v", err)
		}
	})

	t.Run("probe deadline", func(t *testing.T) {
		// A stand-in ffprobe that hangs (with a child of its own, as a
		// wedged demuxer thread would) past the deadline.
		pidFile := filepath.Join(dir, "probe.pid")
		fake := writeScript(t, dir, "ffprobe-hang", `case "$*" in *-version*) echo fake; exit 0;; esac
sleep 300 & echo $! > `+pidFile+`
sleep 300`)
		// Unconfined: a confined probe may not write the pid file. The
		// group kill of a confined child is TestRunKillsProcessGroup's.
		slow, err := New(Config{FFprobe: fake, Unconfined: true})
		if err != nil {
			t.Fatal(err)
		}
		slow.probeTimeout = 300 * time.Millisecond
		start := time.Now()
		_, err = slow.Probe(context.Background(), good)
		if !IsMediaError(err) || !strings.Contains(err.Error(), "took longer than 300ms") {
			t.Fatalf("err %v", err)
		}
		if el := time.Since(start); el > 3*time.Second {
			t.Errorf("probe returned after %v", el)
		}
		waitGone(t, readPID(t, pidFile))
	})
}

// TestRunKillsProcessGroup: on cancel and on deadline, run kills the child
// and everything it started (its process group), and says which it was.
func TestRunKillsProcessGroup(t *testing.T) {
	tr := newTestTranscoder(t)
	dir := t.TempDir()
	for _, mode := range []string{"deadline", "cancel"} {
		t.Run(mode, func(t *testing.T) {
			pidFile := filepath.Join(dir, mode+".pid")
			script := writeScript(t, dir, mode+".sh", "sleep 300 & echo $! > "+pidFile+"\nsleep 300")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			limit := time.Hour
			if mode == "deadline" {
				limit = 300 * time.Millisecond
			} else {
				go func() {
					waitFile(t, pidFile)
					cancel()
				}()
			}
			start := time.Now()
			err := tr.run(ctx, limit, script, nil, nil, confine.Policy{Read: []string{script}, Write: []string{dir}})
			if el := time.Since(start); el > 4*time.Second {
				t.Errorf("run returned after %v", el)
			}
			var de *DeadlineError
			switch mode {
			case "deadline":
				if !errors.As(err, &de) || !errors.Is(err, context.DeadlineExceeded) || de.Limit != limit {
					t.Fatalf("err %v, want a DeadlineError", err)
				}
				if IsMediaError(err) {
					t.Errorf("a deadline is not the media's fault: %v", err)
				}
			case "cancel":
				if errors.As(err, &de) || !errors.Is(err, context.Canceled) {
					t.Fatalf("err %v, want context.Canceled", err)
				}
			}
			waitGone(t, readPID(t, pidFile))
		})
	}
}

// TestDeadlines: every kind of run has a finite deadline that grows with
// the media, and absurd durations cannot overflow it.
func TestDeadlines(t *testing.T) {
	for name, f := range map[string]func(float64) time.Duration{
		"demux": demuxDeadline, "copy": copyDeadline, "audio": audioDeadline, "encode": encodeDeadline,
	} {
		short, long := f(6), f(3600)
		if short <= time.Minute || long <= short || f(-1) != f(0) || f(1e300) <= 0 {
			t.Errorf("%s: 6s→%v 1h→%v -1→%v huge→%v", name, short, long, f(-1), f(1e300))
		}
	}
	if d := encodeDeadline(DefaultChunkSeconds); d < 30*time.Minute || d > time.Hour {
		t.Errorf("a default chunk gets %v to encode", d)
	}
}

// TestSplitUsesProbedStream: a still-image track muxed before the real
// video must not be what gets split.
func TestSplitUsesProbedStream(t *testing.T) {
	tr := newTestTranscoder(t)
	dir := t.TempDir()
	good := genClip(t, dir, "good", clipSpec{W: 160, H: 90, Rate: 25, Seconds: 4, Audio: true})
	mustGen(t, dir, "cover.png", "-f", "lavfi", "-i", "testsrc2=size=64x64", "-frames:v", "1")
	src := filepath.Join(dir, "still-first.mkv")
	mustGen(t, dir, "still-first.mkv", "-i", filepath.Join(dir, "cover.png"), "-i", good, "-map", "0", "-map", "1", "-c", "copy")
	p, err := tr.Probe(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if p.Video.Index != 1 || p.Video.Codec != "h264" {
		t.Fatalf("probe picked %+v", p.Video)
	}
	chunks, err := tr.Split(context.Background(), src, p, ChunkPlan{Seconds: 2}, filepath.Join(dir, "chunks"))
	if err != nil {
		t.Fatal(err)
	}
	frames := 0
	for _, c := range chunks {
		frames += c.Frames
	}
	if frames != 100 {
		t.Fatalf("chunks hold %d frames, want the video's 100", frames)
	}
}

func utf16(s string) []byte {
	b := []byte{0xff, 0xfe}
	for _, r := range s {
		b = binary.LittleEndian.AppendUint16(b, uint16(r))
	}
	return b
}

// patchDurations sets every mvhd/mdhd/tkhd (version 0) duration of an MP4
// to 0xffffff00 ticks: a header that claims weeks of video.
func patchDurations(t *testing.T, b []byte) {
	t.Helper()
	n := 0
	for _, typ := range []string{"mvhd", "mdhd", "tkhd"} {
		for i := 0; ; i += 4 {
			j := strings.Index(string(b[i:]), typ)
			if j < 0 {
				break
			}
			i += j
			if b[i+4] != 0 {
				t.Fatalf("%s version %d", typ, b[i+4])
			}
			off := i + 4 + 4 + 4 + 4 + 4 // version/flags, creation, modification, timescale or track id
			if typ == "tkhd" {
				off += 4 // reserved
			}
			binary.BigEndian.PutUint32(b[off:], 0xffffff00)
			n++
		}
	}
	if n < 3 {
		t.Fatalf("patched %d boxes", n)
	}
}

func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func waitFile(t *testing.T, p string) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(p); err == nil && strings.HasSuffix(string(b), "\n") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readPID(t *testing.T, p string) int {
	t.Helper()
	waitFile(t, p)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("the child never wrote its pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// waitGone waits until pid has exited (gone, or a zombie nobody reaped:
// the grandchild is reparented, and PID 1 of a container may not reap).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		// state is the field after "(comm)".
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && len(b) > i+2 && (b[i+2] == 'Z' || b[i+2] == 'X') {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d (child of the killed run) is still alive: %s", pid, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAllowlistAloneRefusesReferences: the sniffer is only the first line.
// With it out of the way, ffprobe under userInputArgs still refuses every
// input that names another file or an address, and never contacts the
// listener they name. Alone means unconfined too: confinement (package
// confine) would also stop the connections and the reads of other files.
func TestAllowlistAloneRefusesReferences(t *testing.T) {
	tr, err := New(Config{Unconfined: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte("#EXTM3U\n"))
	}))
	defer srv.Close()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := udp.ReadFrom(buf); err != nil {
				return
			}
			hits.Add(1)
		}
	}()
	good := genClip(t, dir, "good", clipSpec{W: 160, H: 90, Rate: 25, Seconds: 1})
	port := udp.LocalAddr().(*net.UDPAddr).Port
	inputs := map[string]string{
		"hls":          "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n" + srv.URL + "/a.ts\n#EXTINF:1,\n" + good + "\n#EXT-X-ENDLIST\n",
		"hls key":      "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-KEY:METHOD=AES-128,URI=\"" + srv.URL + "/k\"\n#EXTINF:1,\n" + good + "\n#EXT-X-ENDLIST\n",
		"dash":         `<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT1S"><Period><AdaptationSet mimeType="video/mp4"><Representation id="0" bandwidth="1"><BaseURL>` + srv.URL + `/v.mp4</BaseURL></Representation></AdaptationSet></Period></MPD>`,
		"ffconcat":     "ffconcat version 1.0\nfile '" + srv.URL + "/x.mp4'\nfile '" + good + "'\n",
		"sdp":          fmt.Sprintf("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video %d RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n", port),
		"image2 glob":  "\x89PNG\r\n\x1a\n",
		"ass":          "[Script Info]\nScriptType: v4.00+\n[Events]\nFormat: Layer, Start, End, Text\nDialogue: 0,0:00:00.00,0:00:01.00," + srv.URL + "\n",
		"subfile+data": "#EXTM3U\n#EXTINF:1,\nsubfile,,start,0,end,0,,:" + good + "\n#EXTINF:1,\ndata:video/mp2t;base64,R0AAEA==\n#EXTINF:1,\ncrypto+" + srv.URL + "/c.ts\n",
	}
	for name, content := range inputs {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+"%03d.mp4")
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"-v", "error"}, userInputArgs()...)
			args = append(args, "-show_format", "-show_streams", "-of", "json", "-i", inputURL(p))
			var out strings.Builder
			err := tr.run(context.Background(), 20*time.Second, tr.ffprobe, args, &out, confine.Policy{Read: []string{p}})
			if err == nil {
				if _, perr := parseProbe([]byte(out.String())); perr == nil {
					t.Fatalf("ffprobe read it and the probe accepted it: %s", out.String())
				}
			}
			t.Logf("refused: %v", err)
		})
	}
	if h := hits.Load(); h != 0 {
		t.Fatalf("the listener was contacted %d times", h)
	}
}
