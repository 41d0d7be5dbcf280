package transcoder

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestMP4VideoFramesMatchesFFprobe checks the box reader against ffprobe's
// own packet count on real encoder output, with and without faststart and
// with an audio track first.
func TestMP4VideoFramesMatchesFFprobe(t *testing.T) {
	tc := newTestTranscoder(t)
	dir := t.TempDir()
	cases := map[string][]string{
		"faststart":   {"-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=2.2", "-c:v", "libx264", "-preset", "ultrafast", "-movflags", "+faststart"},
		"moov-at-end": {"-f", "lavfi", "-i", "testsrc2=size=160x90:rate=30:duration=1.5", "-c:v", "libx264", "-preset", "ultrafast"},
		"audio-first": {"-f", "lavfi", "-i", "sine=duration=1", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=24:duration=1",
			"-map", "0:a", "-map", "1:v", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			mustGen(t, dir, name+".mp4", args...)
			p := filepath.Join(dir, name+".mp4")
			got, err := mp4VideoFrames(p)
			if err != nil {
				t.Fatal(err)
			}
			want, err := tc.countPackets(context.Background(), p, "v:0", 60)
			if err != nil {
				t.Fatal(err)
			}
			if got != want.Packets || got == 0 {
				t.Fatalf("box reader says %d frames, ffprobe %d", got, want.Packets)
			}
		})
	}
	bad := filepath.Join(dir, "bad.mp4")
	os.WriteFile(bad, []byte("\x00\x00\x00\x08ftyp\x00\x00\xff\xffmoov"), 0o600)
	if _, err := mp4VideoFrames(bad); err == nil {
		t.Fatal("garbage accepted")
	}
}
