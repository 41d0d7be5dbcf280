package transcoder

import (
	"strings"
	"testing"
)

// The master playlist is written from the MPD (ffmpeg's own names no
// language or channels): every variant with its attributes.
func TestBuildMasterFromMPD(t *testing.T) {
	mpd := `<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static">
 <Period id="0" start="PT0.0S">
  <AdaptationSet id="0" contentType="video" frameRate="25/1">
   <Representation id="0" mimeType="video/mp4" codecs="avc1.64001e" bandwidth="700000" width="640" height="360"/>
   <Representation id="1" mimeType="video/mp4" codecs="avc1.640015" bandwidth="350000" width="426" height="240"/>
  </AdaptationSet>
  <AdaptationSet id="1" contentType="audio">
   <Representation id="2" mimeType="audio/mp4" codecs="mp4a.40.2" bandwidth="130000"/>
  </AdaptationSet>
 </Period>
</MPD>`
	rs := []Rendition{
		{Name: "360p", Width: 640, Height: 360, Bitrate: 800_000},
		{Name: "240p", Width: 426, Height: 240, Bitrate: 400_000},
	}
	incomplete := "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nmedia_0.m3u8\n"
	if masterComplete([]byte(incomplete), 2) {
		t.Fatal("incomplete master accepted")
	}
	m, err := buildMaster([]byte(mpd), rs, oneTrackIf(true))
	if err != nil {
		t.Fatal(err)
	}
	got := string(m)
	if !masterComplete(m, 2) {
		t.Fatalf("rebuilt master incomplete:\n%s", got)
	}
	for _, want := range []string{
		`URI="media_2.m3u8"`,
		`BANDWIDTH=986000,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2",FRAME-RATE=25.000,VIDEO-RANGE=SDR,AUDIO="audio"` + "\nmedia_0.m3u8",
		`RESOLUTION=426x240,CODECS="avc1.640015,mp4a.40.2"`,
		"\nmedia_1.m3u8\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("master lacks %q:\n%s", want, got)
		}
	}
	noAudio, err := buildMaster([]byte(mpd), rs, nil)
	if err != nil || strings.Contains(string(noAudio), "mp4a") || strings.Contains(string(noAudio), "EXT-X-MEDIA") {
		t.Errorf("video-only master wrong (%v):\n%s", err, noAudio)
	}
	if _, err := buildMaster([]byte(mpd), append(rs, Rendition{Name: "144p"}), nil); err == nil {
		t.Error("missing representation not reported")
	}
}

// oneTrackIf is the audio of a package with one unnamed track, or none.
func oneTrackIf(has bool) []AudioTrack {
	if !has {
		return nil
	}
	return []AudioTrack{{Default: true}}
}
