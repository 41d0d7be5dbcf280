package transcoder

// Fuzz tests: `make fuzz` runs each for FUZZTIME; `go test` runs their
// seeds (testdata/seeds: real ffprobe output, an MPD and playlists that
// ffmpeg 5.1 wrote, a small MP4) and every input in testdata/fuzz/ that
// once failed, as regression tests.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func seed(f *testing.F, name string) []byte {
	f.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "seeds", name))
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzParseOptions: the options field of an upload never panics, and
// options it accepts encode and parse back to the same value.
func FuzzParseOptions(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `  `, `null`, `{"renditions":["720p","360p@600k"],"chunk_seconds":4}`,
		`{"codec":"h264","preset":"veryfast"}`, `{"codec":"HEVC"}`, `{"renditions":[]}`,
		`{"renditions":["1080p@5M","144p@50000"," 240P "]}`, `{"chunk_seconds":1e400}`, `{"chunk_seconds":-0}`,
		`{"colour":"blue"}`, `{"codec":`, `{} {}`, `[]`, `{"renditions":["720p@1e9"]}`, `{"renditions":["99999999999999999999p"]}`,
		`{"preset":"placebo","chunk_seconds":60}`, `{"renditions":null}`,
		`{"audio":"first"}`, `{"audio":[2,0]}`, `{"audio":[]}`, `{"audio":"all"}`, `{"audio":[1,1]}`, `{"audio":[1e3]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		o, err := ParseOptions(raw)
		if err != nil {
			if !reflect.DeepEqual(o, Options{}) {
				t.Fatalf("refused options came back non-zero: %+v", o)
			}
			return
		}
		if err := o.Validate(); err != nil {
			t.Fatalf("accepted options do not validate: %v", err)
		}
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatalf("accepted options do not encode: %v", err)
		}
		o2, err := ParseOptions(b)
		if err != nil {
			t.Fatalf("re-encoded options %s are refused: %v", b, err)
		}
		if !reflect.DeepEqual(o, o2) {
			t.Fatalf("options changed on a round trip: %#v → %s → %#v", o, b, o2)
		}
		// Everything Validate accepts must plan against some source.
		p := &Probe{Duration: 10, Video: &VideoStream{Width: 7680, Height: 4320, FrameRate: 25, Duration: 10}}
		if rs, err := Plan(p, o); err == nil {
			checkRenditions(t, p, rs)
		}
	})
}

// FuzzParseProbe: ffprobe's output (its JSON, and the CSV packet list
// Split reads) never panics the parsers; a probe that is accepted is
// within the limits and plans to sane renditions; the packet list parses
// the same however the pipe splits it.
func FuzzParseProbe(f *testing.F) {
	for _, name := range []string{"probe-rotated.json", "probe-extras.json", "probe-mpegts.json", "keyframes.csv"} {
		f.Add(seed(f, name), uint16(0))
	}
	f.Add(probeDoc("mov,mp4,m4a,3gp,3g2,mj2", "10", vStream(640, 360, "30000/1001", "10"), aStream()), uint16(7))
	f.Add(probeDoc("matroska,webm", "1e308", with(vStream(8192, 4320, "240/1", "86400"), "tags", map[string]string{"rotate": "-90"})), uint16(1))
	f.Add(probeJSON(`"channels":2,"tags":{"language":"eng"}`, `"channels":6,"channel_layout":"5.1(side)","tags":{"language":"fre","title":"VF\u0000x"},"disposition":{"default":1}`), uint16(0))
	f.Add([]byte("packet,0.1,N/A,K_\npacket,N/A,0.2,__\nformat,1.4\n"), uint16(3))
	f.Add([]byte("packet,0.5,0.5,K"+strings.Repeat("_", maxCSVLine)+"\npacket,1,1,K_\n"), uint16(2000))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		if p, err := parseProbe(data); err == nil {
			checkProbe(t, p)
		}
		whole := newKeyframeScanner()
		whole.Write(data)
		want, wantErr := whole.index()
		pieces := newKeyframeScanner()
		at := 0
		if len(data) > 0 {
			at = int(split) % (len(data) + 1)
		}
		pieces.Write(data[:at])
		pieces.Write(data[at:])
		got, gotErr := pieces.index()
		if (wantErr == nil) != (gotErr == nil) || !reflect.DeepEqual(want, got) {
			t.Fatalf("packet list parsed differently when split at %d: %+v %v vs %+v %v", at, want, wantErr, got, gotErr)
		}
		if wantErr == nil {
			if len(want.keyframes) == 0 || want.packets < len(want.keyframes) || want.videoEnd < want.videoStart || want.videoStart < 0 {
				t.Fatalf("inconsistent index %+v", want)
			}
		}
	})
}

func checkProbe(t *testing.T, p *Probe) {
	t.Helper()
	v := p.Video
	switch {
	case v == nil:
		t.Fatal("accepted without video")
	case v.Width <= 0 || v.Height <= 0 || v.Width > maxDimension || v.Height > maxDimension || int64(v.Width)*int64(v.Height) > maxPixels:
		t.Fatalf("accepted size %dx%d", v.Width, v.Height)
	case !(v.Duration > 0 && v.Duration <= maxDuration) || !(p.Duration > 0 && p.Duration <= maxDuration):
		t.Fatalf("accepted durations %v/%v", v.Duration, p.Duration)
	case !(v.FrameRate > 0 && v.FrameRate <= maxFrameRate):
		t.Fatalf("accepted frame rate %v", v.FrameRate)
	case v.Rotation != 0 && v.Rotation != 90 && v.Rotation != 180 && v.Rotation != 270:
		t.Fatalf("rotation %d", v.Rotation)
	case v.Index < 0 || p.Size < 0 || p.BitRate < 0 || v.BitRate < 0:
		t.Fatalf("negative facts %+v %+v", p, v)
	case p.Audio != nil && (p.Audio.Index < 0 || p.Audio.Index == v.Index || p.Audio.Channels < 0 || p.Audio.SampleRate < 0):
		t.Fatalf("audio facts %+v (video index %d)", p.Audio, v.Index)
	}
	checkAudioTracks(t, p)
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatalf("probe does not encode (it goes into the job log): %v", err)
	}
	var back Probe
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(&back, p) {
		t.Fatalf("probe changed on a round trip through the log: %+v vs %+v (%v)", p, &back, err)
	}
	rs, err := Plan(p, Options{})
	if err != nil {
		if !IsMediaError(err) {
			t.Fatalf("planning an accepted probe failed with a non-media error: %v", err)
		}
		return
	}
	checkRenditions(t, p, rs)
}

func checkRenditions(t *testing.T, p *Probe, rs []Rendition) {
	t.Helper()
	if len(rs) == 0 {
		t.Fatal("a plan without renditions")
	}
	for _, r := range rs {
		if r.Width <= 0 || r.Height <= 0 || r.Width%2 != 0 || r.Height%2 != 0 || r.Bitrate <= 0 ||
			max(r.Width, r.Height) > max(p.Video.Width, p.Video.Height)+1 || !safeName.MatchString(r.Name) {
			t.Fatalf("rendition %+v for a %dx%d source", r, p.Video.Width, p.Video.Height)
		}
	}
}

// FuzzMP4VideoFrames: the box reader never panics, loops or allocates
// from a size field, whatever the bytes.
func FuzzMP4VideoFrames(f *testing.F) {
	f.Add(seed(f, "tiny.mp4"))
	f.Add(synthMP4(3, "vide", false))
	f.Add(synthMP4(7, "soun", false))
	f.Add(synthMP4(42, "vide", true))
	f.Add([]byte("\x00\x00\x00\x01moov\xff\xff\xff\xff\xff\xff\xff\xff"))
	f.Add([]byte("\x00\x00\x00\x00moov"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := mp4VideoFramesAt(bytes.NewReader(data), int64(len(data)))
		if err == nil && n < 0 {
			t.Fatalf("%d frames", n)
		}
	})
}

// synthMP4 builds moov/trak/mdia/{hdlr,minf/stbl/stsz} with a sample count,
// with 64-bit box sizes if large is set.
func synthMP4(samples uint32, handler string, large bool) []byte {
	box := func(typ string, body ...[]byte) []byte {
		b := bytes.Join(body, nil)
		if large {
			h := binary.BigEndian.AppendUint32(nil, 1)
			h = append(h, typ...)
			h = binary.BigEndian.AppendUint64(h, uint64(16+len(b)))
			return append(h, b...)
		}
		h := binary.BigEndian.AppendUint32(nil, uint32(8+len(b)))
		return append(append(h, typ...), b...)
	}
	hdlr := append(make([]byte, 8), handler...)
	stsz := binary.BigEndian.AppendUint32(make([]byte, 8), samples)
	return append(box("ftyp", []byte("isom\x00\x00\x02\x00")),
		box("moov", box("trak", box("mdia", box("hdlr", hdlr), box("minf", box("stbl", box("stsz", stsz))))))...)
}

// FuzzManifests: the manifest code never panics; a master playlist built
// from any MPD it accepts is complete (one variant per rendition with
// BANDWIDTH, RESOLUTION and CODECS) and no attribute can break out of its
// line; the VOD rewrite of a media playlist keeps every other line, drops
// the wall-clock tags, and is idempotent.
func FuzzManifests(f *testing.F) {
	f.Add(seed(f, "manifest.mpd"), uint8(2), true)
	f.Add(seed(f, "master.m3u8"), uint8(2), false)
	f.Add(seed(f, "media.m3u8"), uint8(1), false)
	f.Add([]byte(`<MPD><Period><AdaptationSet contentType="video" frameRate="30000/1001"><Representation id="0" codecs="avc1.64001f" bandwidth="1" width="2" height="2"/></AdaptationSet><AdaptationSet contentType="audio"><Representation id="9" mimeType="audio/mp4" codecs="mp4a.40.2" bandwidth="96000"/></AdaptationSet></Period></MPD>`), uint8(0), true)
	f.Add([]byte(`<MPD><Period><AdaptationSet contentType="video"><Representation id="0" codecs="avc1&#10;#EXT-X-ENDLIST&#10;http://127.0.0.1:1/x" bandwidth="1"/></AdaptationSet></Period></MPD>`), uint8(0), false)
	f.Add([]byte("#EXTM3U\r\n#EXT-X-VERSION:6\r\n#EXT-X-PLAYLIST-TYPE:EVENT\r\n#EXT-X-PROGRAM-DATE-TIME:x\r\nseg.m4s"), uint8(0), false)
	f.Fuzz(func(t *testing.T, data []byte, n uint8, hasAudio bool) {
		rs := make([]Rendition, int(n%6)+1)
		for i := range rs {
			rs[i] = Rendition{Name: fmt.Sprintf("%dp", 144*(i+1)), Width: 256 * (i + 1), Height: 144 * (i + 1), Bitrate: int64(200_000 * (i + 1)), Codec: "h264"}
		}
		if m, err := buildMaster(data, rs, oneTrackIf(hasAudio)); err == nil {
			if !masterComplete(m, len(rs)) {
				t.Fatalf("built master is incomplete:\n%s", m)
			}
			// The header, the audio rendition if any, then a STREAM-INF and
			// its URI per rendition: no attribute from the MPD can add a line.
			ls := strings.Split(strings.TrimSuffix(string(m), "\n"), "\n")
			want := 3 + 2*len(rs)
			if hasAudio {
				want++
			}
			if len(ls) != want {
				t.Fatalf("built master has %d lines, want %d:\n%s", len(ls), want, m)
			}
			for i := range rs {
				inf, uri := ls[want-2*len(rs)+2*i], ls[want-2*len(rs)+2*i+1]
				if !strings.HasPrefix(inf, "#EXT-X-STREAM-INF:") || uri != fmt.Sprintf("media_%d.m3u8", i) {
					t.Fatalf("variant %d is %q %q:\n%s", i, inf, uri, m)
				}
			}
		}
		_ = masterComplete(data, len(rs))

		vod := vodMediaPlaylist(data)
		if again := vodMediaPlaylist(vod); !bytes.Equal(again, vod) {
			t.Fatalf("VOD rewrite is not idempotent:\n%q\n%q", vod, again)
		}
		// lines reads a playlist: LF-terminated (a last line may lack it), a
		// CR before the LF belonging to the terminator.
		lines := func(b []byte) []string {
			ls := strings.Split(string(b), "\n")
			if ls[len(ls)-1] == "" {
				ls = ls[:len(ls)-1]
			}
			for i := range ls {
				ls[i] = strings.TrimRight(ls[i], "\r")
			}
			return ls
		}
		var kept, out []string
		for _, l := range lines(data) {
			if !strings.HasPrefix(l, "#EXT-X-PROGRAM-DATE-TIME") && !strings.HasPrefix(l, "#EXT-X-PLAYLIST-TYPE") {
				kept = append(kept, l)
			}
		}
		for _, l := range lines(vod) {
			if l != "#EXT-X-PLAYLIST-TYPE:VOD" {
				out = append(out, l)
			}
			if strings.HasPrefix(l, "#EXT-X-PROGRAM-DATE-TIME") {
				t.Fatalf("wall-clock tag kept: %q", vod)
			}
		}
		if len(vod) > 0 && vod[len(vod)-1] != '\n' {
			t.Fatalf("rewrite does not end in a newline: %q", vod)
		}
		if !slices.Equal(kept, out) {
			t.Fatalf("VOD rewrite lost or changed lines:\n%q\n%q", kept, out)
		}
	})
}

// FuzzSniffHead: classifying an upload's first bytes never panics, refuses
// every text that could be a playlist, a concat list, a manifest or an SDP,
// and looks at no more than the first 4 KiB.
func FuzzSniffHead(f *testing.F) {
	for _, s := range []string{
		"", "#EXTM3U\n", "\ufeff\n #EXTM3U", "ffconcat version 1.0\n", "file 'a'\n", "<?xml?><MPD/>", "<MPD/>",
		"v=0\r\nc=IN IP4 127.0.0.1\r\n", "[Script Info]\n", "WEBVTT\n", "YUV4MPEG2 W1 H1\n", "PK\x03\x04", "\x1f\x8b\x08",
		"\x00\x00\x00\x20ftypisom", "\x47\x40\x00\x10", "\x1aE\xdf\xa3", "RIFF\x00\x00\x00\x00AVI ",
	} {
		f.Add([]byte(s))
	}
	f.Add(seed(f, "tiny.mp4"))
	f.Add(seed(f, "media.m3u8"))
	f.Fuzz(func(t *testing.T, head []byte) {
		err := sniffHead(head)
		if err != nil && !IsMediaError(err) {
			t.Fatalf("not a MediaError: %v", err)
		}
		if len(head) > sniffBytes {
			if err2 := sniffHead(head[:sniffBytes]); (err == nil) != (err2 == nil) {
				t.Fatalf("bytes past %d changed the verdict: %v vs %v", sniffBytes, err, err2)
			}
		}
		trimmed := bytes.TrimLeft(head, "\ufeff \t\r\n")
		for _, p := range []string{"#EXTM3U", "ffconcat", "<?xml", "<MPD", "v=0"} {
			if bytes.HasPrefix(trimmed, []byte(p)) && err == nil {
				t.Fatalf("%q passed the sniffer", head)
			}
		}
		if len(head) == 0 && err == nil {
			t.Fatal("empty file passed")
		}
	})
}

// checkAudioTracks: the kept audio streams are bounded, Audio is the first,
// and what came from the file's tags is clean.
func checkAudioTracks(t *testing.T, p *Probe) {
	t.Helper()
	ts := p.AudioTracks
	if len(ts) > MaxAudioTracks || (len(ts) > 0) != (p.Audio != nil) || len(ts) > 0 && *p.Audio != ts[0] {
		t.Fatalf("audio %+v, tracks %+v", p.Audio, ts)
	}
	for _, a := range ts {
		if cleanLanguage(a.Language) != a.Language || cleanTitle(a.Title) != a.Title || cleanLayout(a.ChannelLayout) != a.ChannelLayout ||
			len([]rune(a.Title)) > maxTitleRunes || a.Channels < 0 || a.Index == p.Video.Index {
			t.Fatalf("audio track %+v", a)
		}
	}
}
