package node

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestPipelineGoodClips uploads generated clips to a real one-node cluster
// (raft on BoltDB, real ffmpeg, real HTTP) and checks what a player would:
// HLS and DASH open through the node, every rendition has the source's
// duration and its planned height, audio matches video, and keyframes fall
// at the same times in every rendition.
func TestPipelineGoodClips(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	dir := t.TempDir()
	n := startNode(t, filepath.Join(dir, "data"), nil)
	cases := []struct {
		name      string
		args      []string
		options   string
		audio     bool
		minChunks int
	}{
		{"landscape-with-audio", []string{"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=10",
			"-f", "lavfi", "-i", "sine=frequency=440:duration=10", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
			"-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"}, `{"chunk_seconds":4}`, true, 2},
		{"portrait", []string{"-f", "lavfi", "-i", "testsrc2=size=360x640:rate=30:duration=6",
			"-f", "lavfi", "-i", "sine=frequency=220:duration=6", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30",
			"-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"}, ``, true, 1},
		{"no-audio", []string{"-f", "lavfi", "-i", "testsrc2=size=480x270:rate=24:duration=6",
			"-c:v", "libx264", "-preset", "ultrafast", "-g", "24", "-pix_fmt", "yuv420p"}, `{"chunk_seconds":3}`, false, 2},
		{"keyframes-far-apart", []string{"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=16",
			"-f", "lavfi", "-i", "sine=frequency=330:duration=16", "-c:v", "libx264", "-preset", "ultrafast",
			"-g", "1000", "-keyint_min", "1000", "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"}, `{"chunk_seconds":4}`, true, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := genClip(t, filepath.Join(dir, tc.name+".mp4"), tc.args...)
			j := submit(t, n.base, src, tc.options)
			j = waitJob(t, n.base, j.ID, 4*time.Minute)
			if j.State != "done" {
				t.Fatalf("job %s: %s (%s)", j.ID, j.State, j.Error)
			}
			if j.Progress != 1 {
				t.Errorf("done job progress %v", j.Progress)
			}
			if len(j.Chunks) < tc.minChunks {
				t.Errorf("want at least %d chunks, got %d", tc.minChunks, len(j.Chunks))
			}
			for _, c := range j.Chunks {
				if c.EncodedBy != "n1" || c.Frames == 0 {
					t.Errorf("chunk %+v", c)
				}
				if c.Duration > 12.01 {
					t.Errorf("chunk %d is %.2fs, longer than the bound", c.Index, c.Duration)
				}
			}
			if j.Outputs.HLS == "" || j.Outputs.DASH == "" || len(j.Outputs.MP4) != len(j.Renditions) {
				t.Fatalf("outputs: %+v", j.Outputs)
			}
			srcDur := j.Source.Video.Duration

			// HLS and DASH open through the node's HTTP server with one video
			// stream per rendition.
			for _, u := range []string{j.Outputs.HLS, j.Outputs.DASH} {
				v := probeURL(t, n.base+u, "-show_streams")
				videos := 0
				for _, s := range v["streams"].([]any) {
					if s.(map[string]any)["codec_type"] == "video" {
						videos++
					}
				}
				if videos != len(j.Renditions) {
					t.Errorf("%s: %d video streams, want %d", u, videos, len(j.Renditions))
				}
			}

			var refKeys []float64
			for i, r := range j.Renditions {
				u := n.base + j.Outputs.MP4[r.Name]
				vd, ad, h := streamDurations(t, u)
				if math.Abs(vd-srcDur) > 0.1 {
					t.Errorf("%s: video %.3fs, source %.3fs", r.Name, vd, srcDur)
				}
				if tc.audio && math.Abs(ad-vd) > 0.1 {
					t.Errorf("%s: audio %.3fs vs video %.3fs", r.Name, ad, vd)
				}
				if !tc.audio && ad != 0 {
					t.Errorf("%s: audio in a video-only job", r.Name)
				}
				if h != r.Height || r.Height%2 != 0 || r.Width%2 != 0 {
					t.Errorf("%s: height %d, planned %dx%d", r.Name, h, r.Width, r.Height)
				}
				keys := keyframeTimes(t, u)
				if i == 0 {
					refKeys = keys
					if len(keys) < 2 {
						t.Errorf("%s: only %d keyframes", r.Name, len(keys))
					}
				} else if !slices.Equal(keys, refKeys) {
					t.Errorf("keyframes of %s %v differ from %s %v", r.Name, keys, j.Renditions[0].Name, refKeys)
				}
			}
		})
	}
	// Every job finished while the node watched: the job-level series count
	// them once each.
	metrics := scrape(t, n.base)
	for _, want := range []string{
		fmt.Sprintf(`gosty_jobs_finished_total{state="done"} %d`, len(cases)),
		fmt.Sprintf(`gosty_job_duration_seconds_count{codec="h264"} %d`, len(cases)),
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestBadInputs sends a corpus of hostile and broken uploads, all generated
// here. Each gets a 4xx with a readable message or a failed job with a
// reason; the HTTP (and RTP) listener the inputs name is never contacted;
// nothing outside the data dir is read or written; and the node stays
// healthy and still does real work.
//
// "Nothing outside the data dir is read" is checked by content, not by
// access times: relatime (the usual mount option) updates atime at most
// once a day, and noatime never, so an atime that did not change proves
// nothing. Instead the inputs point at /etc/passwd and at canary files in
// the test's temp dir (outside the data dir) holding a random token, and
// afterwards no file in the data dir (blobs, chunks, outputs, the raft log
// with every job's JSON and error) and no job JSON from the API contains
// the token or /etc/passwd's first line. Anything that followed a
// reference would have copied those bytes there: the canary video carries
// the token as its title, which a stream-copy split keeps.
func TestBadInputs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	n := startNode(t, dataDir, nil)

	// Traps: an HTTP listener and a pair of UDP ports (RTP and RTCP for
	// the SDP input) that count every contact.
	var hits atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	trap := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		t.Logf("trap hit: %s %s", r.Method, r.URL)
		w.Write([]byte("#EXTM3U\n"))
	})}
	go trap.Serve(ln)
	defer trap.Close()
	trapAddr := ln.Addr().String()
	trapURL := "http://" + trapAddr
	rtpPort, udpConns := udpPair(t)
	var udpHits atomic.Int64
	for _, c := range udpConns {
		go func() {
			buf := make([]byte, 2048)
			for {
				if _, _, err := c.ReadFrom(buf); err != nil {
					return
				}
				udpHits.Add(1)
			}
		}()
	}

	// Canaries outside the data dir, and what must never show up inside it.
	tokenBytes := make([]byte, 12)
	if _, err := rand.Read(tokenBytes); err != nil {
		t.Fatal(err)
	}
	token := "gosty-canary-" + hex.EncodeToString(tokenBytes)
	canaryText := filepath.Join(dir, "canary.txt")
	if err := os.WriteFile(canaryText, []byte(token+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	canaryVideo := genClip(t, filepath.Join(dir, "canary.mkv"), "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=2",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-metadata", "title="+token)
	canaryTS := genClip(t, filepath.Join(dir, "canary.ts"), "-i", canaryVideo, "-c", "copy", "-metadata", "service_name="+token)
	passwdLine := ""
	if b, err := os.ReadFile("/etc/passwd"); err == nil {
		passwdLine, _, _ = strings.Cut(string(b), "\n")
	}

	good := genClip(t, filepath.Join(dir, "good.mp4"), "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=4",
		"-f", "lavfi", "-i", "sine=duration=4", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")
	goodData, _ := os.ReadFile(good)
	gen := func(name string, args ...string) string { return genClip(t, filepath.Join(dir, name), args...) }
	remux := func(ext string) []byte {
		b, _ := os.ReadFile(gen("good."+ext, "-i", good, "-c", "copy"))
		return b
	}
	goodTS, goodMKV := remux("ts"), remux("mkv")
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rnd := make([]byte, 64<<10)
	for i := range rnd {
		rnd[i] = byte(i*7919 + i/13)
	}
	hlsTo := func(uris ...string) []byte {
		var b strings.Builder
		b.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n")
		for _, u := range uris {
			b.WriteString("#EXTINF:10,\n" + u + "\n")
		}
		b.WriteString("#EXT-X-ENDLIST\n")
		return []byte(b.String())
	}
	streams40 := []string{"-i", good, "-map", "0:v"}
	for range 39 {
		streams40 = append(streams40, "-map", "0:a")
	}
	streams40 = append(streams40, "-c", "copy")
	longMP4 := slices.Clone(goodData)
	patchMP4Durations(t, longMP4)

	type result struct {
		code int
		body []byte
	}
	post := func(file, options string) func() result {
		return func() result { c, b := upload(t, n.base, file, options); return result{c, b} }
	}
	postAs := func(name string, data []byte) func() result {
		return func() result { c, b := uploadAs(t, n.base, name, data); return result{c, b} }
	}
	cases := []struct {
		name string
		send func() result
	}{
		{"empty", post(write("empty.mp4", nil), "")},
		{"text", post(write("notes.mp4", []byte(strings.Repeat("this is not a video\n", 200))), "")},
		{"random-bytes", post(write("noise.mp4", rnd), "")},
		{"hls-to-passwd", post(write("list.m3u8", hlsTo("file:///etc/passwd", "/etc/passwd", canaryTS, "file:"+canaryTS)), "")},
		{"hls-to-listener", post(write("remote.mp4", hlsTo(trapURL+"/seg.ts")), "")},
		{"ffconcat-to-passwd", post(write("concat.txt", []byte("ffconcat version 1.0\nfile /etc/passwd\nfile '"+canaryVideo+"'\n")), "")},
		{"truncated-mp4", post(write("half.mp4", goodData[:len(goodData)/2]), "")},
		// An upload that broke off ends at an arbitrary byte, not on a 188-byte packet boundary.
		{"truncated-mpegts", post(write("half.ts", goodTS[:len(goodTS)*2/5+37]), "")},
		{"truncated-mkv", post(write("half.mkv", goodMKV[:len(goodMKV)*2/5]), "")},
		{"image-sequence-pattern", post(write("img%03d.png", []byte("\x89PNG\r\n\x1a\n")), "")},
		{"malformed-options", post(good, `{"codec":`)},
		{"unknown-option", post(good, `{"colour":"blue"}`)},
		{"upscale-request", post(good, `{"renditions":["1080p"]}`)},
		{"dash-mpd-to-passwd-and-listener", post(write("manifest.mpd", []byte(`<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT10S" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">
 <Period><AdaptationSet mimeType="video/mp4">
  <Representation id="0" bandwidth="100000" width="320" height="180" codecs="avc1.64000d"><BaseURL>file:///etc/passwd</BaseURL></Representation>
  <Representation id="1" bandwidth="100000"><BaseURL>`+trapURL+`/v.mp4</BaseURL></Representation>
  <Representation id="2" bandwidth="100000"><BaseURL>file://`+canaryVideo+`</BaseURL></Representation>
 </AdaptationSet></Period></MPD>
`)), "")},
		{"dash-mpd-without-prolog", post(write("nohead.mp4", []byte(`<MPD type="static"><Period><AdaptationSet><Representation id="0"><BaseURL>`+trapURL+`/x.mp4</BaseURL></Representation></AdaptationSet></Period></MPD>`)), "")},
		{"hls-as-mp4-with-protocol-urls", post(write("movie.mp4", hlsTo(
			"crypto+"+trapURL+"/enc.ts", "subfile,,start,0,end,0,,:/etc/passwd", "data:video/mp2t;base64,R0AAEAAAsA0AAcEAAAAB8AAqsQQ=",
			"concat:/etc/passwd|"+canaryTS, "tcp://"+trapAddr, "file:"+canaryText)), "")},
		{"hls-key-and-map-uri-to-listener", post(write("keyed.m3u8", []byte("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n"+
			"#EXT-X-KEY:METHOD=AES-128,URI=\""+trapURL+"/key\",IV=0x00000000000000000000000000000001\n"+
			"#EXT-X-MAP:URI=\""+trapURL+"/init.mp4\"\n#EXTINF:4,\n"+trapURL+"/seg.m4s\n#EXT-X-ENDLIST\n")), "")},
		{"concat-list-without-header", post(write("list.mp4", []byte("file '"+trapURL+"/x.ts'\nfile '/etc/passwd'\nfile '"+canaryVideo+"'\n")), "")},
		{"srt-subtitles", post(write("subs.srt", []byte("1\n00:00:01,000 --> 00:00:02,000\n<font face=\""+canaryText+"\">hi</font>\n\n")), "")},
		{"ass-subtitles", post(write("subs.ass", []byte("[Script Info]\nScriptType: v4.00+\n\n[V4+ Styles]\nFormat: Name, Fontname\nStyle: Default,"+canaryText+
			"\n\n[Events]\nFormat: Layer, Start, End, Style, Text\nDialogue: 0,0:00:00.00,0:00:01.00,Default,{\\fn/etc/passwd}hi\n")), "")},
		{"utf16-srt-past-the-sniffer", post(write("subs16.mp4", utf16LE("1\n00:00:01,000 --> 00:00:02,000\n/etc/passwd\n\n")), "")},
		{"sdp-to-listener", post(write("stream.sdp", []byte(fmt.Sprintf("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video %d RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n", rtpPort))), "")},
		{"dimensions-over-limit", post(gen("wide.mp4", "-f", "lavfi", "-i", "color=size=8320x32:rate=1:duration=1", "-c:v", "libx264", "-preset", "ultrafast"), "")},
		{"dimensions-crafted-header", post(write("huge.y4m", []byte("YUV4MPEG2 W9000 H16 F25:1 Ip A1:1 C420jpeg\nFRAME\n"+strings.Repeat("x", 128))), "")},
		{"frame-rate-over-limit", post(gen("fast.mp4", "-f", "lavfi", "-i", "testsrc2=size=64x36:rate=300", "-t", "0.2", "-c:v", "libx264", "-preset", "ultrafast"), "")},
		{"declared-duration-over-limit", post(write("long.mp4", longMP4), "")},
		{"too-many-streams", post(gen("streams40.mkv", streams40...), "")},
		{"audio-only", post(gen("audio.m4a", "-i", good, "-map", "0:a", "-c", "copy"), "")},
		{"container-without-frames", post(gen("noframes.mp4", "-f", "lavfi", "-i", "testsrc2=size=64x36:rate=10", "-frames:v", "0"), "")},
		{"png-image", post(gen("still.png", "-f", "lavfi", "-i", "testsrc2=size=64x64", "-frames:v", "1"), "")},
		{"gzip-archive", post(write("clip.mp4.gz", gzipped(t, goodData)), "")},
		{"zip-archive-with-playlist", post(write("bundle.zip", zipped(t, "index.m3u8", hlsTo("/etc/passwd", trapURL+"/a.ts"))), "")},
		{"path-traversal-filename", postAs("../../etc/passwd", []byte(strings.Repeat("not a passwd file, not a video\n", 40)))},
		{"huge-declared-content-length", func() result { c, b := hugeContentLength(t, n.base); return result{c, b} }},
	}
	if len(cases) < 22 {
		t.Fatalf("only %d kinds of bad input", len(cases))
	}
	// Extras a real file may carry are ignored, not refused: a font
	// attachment and a subtitle track (whose text names the canary, the
	// listener and /etc/passwd) ride along; the outputs hold one video and
	// one audio stream and none of the extras' bytes. A traversal name in
	// a raw upload is only a display name.
	fontToken := "gosty-font-" + hex.EncodeToString(tokenBytes[:6])
	font := write("font.ttf", []byte(fontToken+strings.Repeat("\x00", 64)))
	subs := write("refs.ass", []byte("[Script Info]\nScriptType: v4.00+\n\n[V4+ Styles]\nFormat: Name, Fontname\nStyle: Default,"+canaryText+
		"\n\n[Events]\nFormat: Layer, Start, End, Style, Text\nDialogue: 0,0:00:00.00,0:00:01.00,Default,{\\fn/etc/passwd}"+trapURL+" "+fontToken+"\n"))
	extras := gen("extras.mkv", "-i", good, "-i", subs, "-attach", font, "-metadata:s:t:0", "mimetype=application/x-truetype-font",
		"-map", "0", "-map", "1", "-c", "copy")
	outsideBefore := listOutside(t, dir, dataDir)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.send()
			code, body := r.code, r.body
			switch {
			case code >= 400 && code < 500:
				var e apiError
				if err := json.Unmarshal(body, &e); err != nil || e.Error.Message == "" || e.Error.Code == "" {
					t.Fatalf("%d without a readable message: %s", code, body)
				}
				readableReason(t, e.Error.Message, dataDir)
				t.Logf("%d %s: %s", code, e.Error.Code, e.Error.Message)
			case code == http.StatusCreated:
				j := submitted(t, body)
				j = waitJob(t, n.base, j.ID, 2*time.Minute)
				if j.State != "failed" || j.Error == "" {
					t.Fatalf("accepted bad input ended %s (%q)", j.State, j.Error)
				}
				readableReason(t, j.Error, dataDir)
				t.Logf("job failed: %s", j.Error)
			default:
				t.Fatalf("status %d: %s", code, body)
			}
		})
	}

	t.Run("ignored-extras", func(t *testing.T) {
		j := waitJob(t, n.base, submit(t, n.base, extras, "").ID, 2*time.Minute)
		if j.State != "done" {
			t.Fatalf("job with a subtitle and a font: %s %s", j.State, j.Error)
		}
		for name, u := range j.Outputs.MP4 {
			v := probeURL(t, n.base+u, "-show_streams")
			types := map[string]int{}
			for _, s := range v["streams"].([]any) {
				types[fmt.Sprint(s.(map[string]any)["codec_type"])]++
			}
			if types["video"] != 1 || types["audio"] != 1 || len(types) != 2 {
				t.Errorf("%s has streams %v, want one video and one audio", name, types)
			}
			if b := fetch(t, n.base+u); bytes.Contains(b, []byte(fontToken)) {
				t.Errorf("%s carries the font's or the subtitles' bytes", name)
			}
		}
	})
	t.Run("traversal-in-raw-filename", func(t *testing.T) {
		code, body := rawUpload(t, n.base, "../../../../escaped.mp4", goodData)
		if code != http.StatusCreated {
			t.Fatalf("%d %s", code, body)
		}
		j := waitJob(t, n.base, submitted(t, body).ID, 2*time.Minute)
		if j.State != "done" || j.Name != "escaped.mp4" {
			t.Fatalf("job %q: %s %s", j.Name, j.State, j.Error)
		}
	})

	if h := hits.Load(); h != 0 {
		t.Errorf("hostile inputs made the node contact the HTTP listener %d times", h)
	}
	if h := udpHits.Load(); h != 0 {
		t.Errorf("hostile inputs made the node send %d RTP/RTCP packets", h)
	}
	// Nothing outside the data dir was written (the traversal names).
	if after := listOutside(t, dir, dataDir); !slices.Equal(after, outsideBefore) {
		t.Errorf("files outside the data dir changed:\nbefore %v\nafter  %v", outsideBefore, after)
	}
	// Nothing outside the data dir was read: see the comment at the top.
	forbidden := map[string]string{"canary token": token}
	if passwdLine != "" {
		forbidden["/etc/passwd's first line"] = passwdLine
	}
	checked := 0
	err = filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		checked++
		for what, s := range forbidden {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds the %s", p, what)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	jobs := fetch(t, n.base+"/api/v1/jobs")
	for what, s := range forbidden {
		if bytes.Contains(jobs, []byte(s)) {
			t.Errorf("the job list holds the %s", what)
		}
	}
	t.Logf("%d kinds of bad input; %d files in the data dir checked for canary bytes", len(cases), checked)

	// The node is healthy and still does real work.
	resp, err := http.Get(n.base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz %d after the bad inputs", resp.StatusCode)
	}
	j := waitJob(t, n.base, submit(t, n.base, good, "").ID, 2*time.Minute)
	if j.State != "done" {
		t.Fatalf("good job after bad inputs: %s %s", j.State, j.Error)
	}
}

// readableReason: a reason a user can read, without ffmpeg's internals or
// the node's paths.
func readableReason(t *testing.T, msg, dataDir string) {
	t.Helper()
	if len(strings.TrimSpace(msg)) < 8 || strings.Contains(msg, " @ 0x") || strings.Contains(msg, dataDir) {
		t.Errorf("reason is not readable or leaks internals: %q", msg)
	}
}

// udpPair binds two consecutive UDP ports on loopback (RTP and RTCP).
func udpPair(t *testing.T) (int, []net.PacketConn) {
	t.Helper()
	for range 50 {
		a, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := a.LocalAddr().(*net.UDPAddr).Port
		if port%2 == 0 {
			if b, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port+1)); err == nil {
				t.Cleanup(func() { a.Close(); b.Close() })
				return port, []net.PacketConn{a, b}
			}
		}
		a.Close()
	}
	t.Fatal("no free pair of UDP ports")
	return 0, nil
}

// listOutside lists every file under dir except skip, with its size.
func listOutside(t *testing.T, dir, skip string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		if info, err := d.Info(); err == nil && !d.IsDir() {
			out = append(out, fmt.Sprintf("%s:%d", p, info.Size()))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// uploadAs posts data as a multipart file field with exactly this file
// name (nodetest.Upload sends the base name of a path).
func uploadAs(t *testing.T, base, filename string, data []byte) (int, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, filename))
	h.Set("Content-Type", "application/octet-stream")
	fw, err := mw.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(data)
	mw.Close()
	return doPost(t, base+"/api/v1/jobs", mw.FormDataContentType(), &buf)
}

// rawUpload posts data as a raw body named by ?filename=.
func rawUpload(t *testing.T, base, filename string, data []byte) (int, []byte) {
	t.Helper()
	return doPost(t, base+"/api/v1/jobs?filename="+url.QueryEscape(filename), "application/octet-stream", bytes.NewReader(data))
}

func doPost(t *testing.T, u, ct string, body io.Reader) (int, []byte) {
	t.Helper()
	resp, err := http.Post(u, ct, body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// hugeContentLength declares a body of 1 PiB (the node's limit is 64 GiB)
// and sends a few bytes of it; the answer must come from the headers.
func hugeContentLength(t *testing.T, base string) (int, []byte) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "POST /api/v1/jobs?filename=big.mp4 HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", u.Host, int64(1)<<50)
	c.Write(make([]byte, 4096))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("declared 1 PiB: %d, want 413", resp.StatusCode)
	}
	return resp.StatusCode, b
}

func fetch(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", u, resp.StatusCode, err)
	}
	return b
}

func gzipped(t *testing.T, data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zipped(t *testing.T, name string, data []byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func utf16LE(s string) []byte {
	b := []byte{0xff, 0xfe}
	for _, r := range s {
		b = binary.LittleEndian.AppendUint16(b, uint16(r))
	}
	return b
}

// patchMP4Durations makes every mvhd/mdhd/tkhd (version 0) of an MP4 claim
// 0xffffff00 ticks: weeks of video in the header over seconds of frames.
func patchMP4Durations(t *testing.T, b []byte) {
	t.Helper()
	n := 0
	for _, typ := range []string{"mvhd", "mdhd", "tkhd"} {
		for i := 0; ; i += 4 {
			j := bytes.Index(b[i:], []byte(typ))
			if j < 0 {
				break
			}
			i += j
			off := i + 20 // type, version/flags, creation, modification, timescale or track id
			if typ == "tkhd" {
				off += 4 // reserved
			}
			if b[i+4] != 0 || off+4 > len(b) {
				t.Fatalf("unexpected %s box", typ)
			}
			binary.BigEndian.PutUint32(b[off:], 0xffffff00)
			n++
		}
	}
	if n < 3 {
		t.Fatalf("patched %d boxes", n)
	}
}

func submitted(t *testing.T, body []byte) apiJob {
	t.Helper()
	var j apiJob
	if err := jsonUnmarshal(body, &j); err != nil {
		t.Fatal(err)
	}
	return j
}
