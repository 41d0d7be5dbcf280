package transcoder

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEncodeAudioAlignment covers sources whose audio starts after or before
// the video: the track must come out exactly as long as the video, with
// silence where the source had no audio yet.
func TestEncodeAudioAlignment(t *testing.T) {
	tr := newTestTranscoder(t)
	dir := t.TempDir()
	cases := []struct {
		name        string
		args        []string
		leadSilence bool
	}{
		{"audio late", []string{"-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=4",
			"-itsoffset", "0.5", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=3"}, true},
		{"audio early", []string{"-itsoffset", "0.5", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=3",
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=5"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "_")
			mustGen(t, dir, name+".mkv", append(tc.args, "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-ac", "2")...)
			src := filepath.Join(dir, name+".mkv")
			p, err := tr.Probe(context.Background(), src)
			if err != nil {
				t.Fatal(err)
			}
			if p.Audio == nil {
				t.Fatal("no audio probed")
			}
			out := filepath.Join(dir, name+".m4a")
			var last float64
			if err := tr.EncodeAudioProgress(context.Background(), src, p, p.Video.Duration, out, func(f float64) { last = f }); err != nil {
				t.Fatal(err)
			}
			if last != 1 {
				t.Errorf("last progress %v, want 1", last)
			}
			_, d := streamFacts(t, out, "a")
			if !near(d, p.Video.Duration, 0.05) {
				t.Errorf("audio %.3f s, video %.3f s (audio start %.3f, video start %.3f)", d, p.Video.Duration, p.Audio.StartTime, p.Video.StartTime)
			}
			b, _ := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-i", out, "-t", "0.4", "-af", "volumedetect", "-f", "null", "-").CombinedOutput()
			silent := strings.Contains(string(b), "max_volume: -91") || strings.Contains(string(b), "max_volume: -inf")
			if silent != tc.leadSilence {
				t.Errorf("leading 0.4 s silent = %v, want %v", silent, tc.leadSilence)
			}
		})
	}
	if err := tr.EncodeAudio(context.Background(), "x", &Probe{Video: &VideoStream{}}, 1, filepath.Join(dir, "x.m4a")); err == nil {
		t.Error("no error for a source without audio")
	}
}

// An audio encode whose output does not read back (here an ffmpeg that
// exits 0 after its output lost all but its first bytes: no moov atom, as
// a full disk during the faststart pass left it in TestFullDiskMidUpload
// AndEncode) fails and keeps nothing.
func TestEncodeAudioVerifiesItsOutput(t *testing.T) {
	dir := t.TempDir()
	real, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("no ffmpeg")
	}
	fake := writeScript(t, dir, "ffmpeg-short", real+` "$@" || exit $?
for a; do last=$a; done
case "$last" in *.part) truncate -s 32 "$last";; esac
exit 0`)
	tr, err := New(Config{FFmpeg: fake, Unconfined: true})
	if err != nil {
		t.Fatal(err)
	}
	src := genClip(t, dir, "src", clipSpec{W: 160, H: 90, Rate: 25, Seconds: 2, GOP: 1, Audio: true, Preset: "ultrafast"})
	p, err := tr.Probe(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out", "audio.m4a")
	err = tr.EncodeAudio(context.Background(), src, p, p.Video.Duration, out)
	if err == nil || !strings.Contains(err.Error(), "does not read back") {
		t.Fatalf("err %v, want a damaged output refused", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "out", "*")); len(left) > 0 {
		t.Fatalf("left behind: %v", left)
	}
}
