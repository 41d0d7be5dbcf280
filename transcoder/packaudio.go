package transcoder

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/gosty/gosty/transcoder/confine"
)

// AudioTracksOf reads the tracks of a job's encoded audio (an .m4a that
// EncodeAudio wrote): their order, names (the handler name), languages,
// channels and which is the default (the first). A track written before
// names existed has no name and no language.
func (t *Transcoder) AudioTracksOf(ctx context.Context, path string, mediaSeconds float64) ([]AudioTrack, error) {
	args := []string{"-v", "error", "-hide_banner", "-protocol_whitelist", "file", "-select_streams", "a",
		"-show_entries", "stream=index,channels:stream_tags=language,handler_name:stream_disposition=default",
		"-of", "json", "-i", inputURL(path)}
	var out bytes.Buffer
	if err := t.run(ctx, demuxDeadline(mediaSeconds), t.ffprobe, args, &out, confine.Policy{Read: []string{path}}); err != nil {
		return nil, fmt.Errorf("audio tracks of %s: %w", path, err)
	}
	tracks, err := parseAudioTracks(out.Bytes())
	if err != nil {
		return nil, fmt.Errorf("audio tracks of %s: %w", path, err)
	}
	return tracks, nil
}

func parseAudioTracks(js []byte) ([]AudioTrack, error) {
	var r struct {
		Streams []struct {
			Index       int               `json:"index"`
			Channels    int               `json:"channels"`
			Tags        map[string]string `json:"tags"`
			Disposition map[string]int    `json:"disposition"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(js, &r); err != nil {
		return nil, err
	}
	if len(r.Streams) == 0 {
		return nil, fmt.Errorf("no audio stream")
	}
	out := make([]AudioTrack, len(r.Streams))
	used := map[string]bool{}
	for k, s := range r.Streams {
		name := cleanTitle(s.Tags["handler_name"])
		if name == "SoundHandler" || used[name] {
			name = "" // MasterPlaylist names it "audio", "audio 2", ...
		}
		used[name] = name != ""
		out[k] = AudioTrack{Ordinal: k, Source: s.Index, Name: name, Language: cleanLanguage(s.Tags["language"]),
			Channels: s.Channels, Default: k == 0}
	}
	return out, nil
}

// audioPackageArgs are the DASH output's audio options of Package: every
// track of input in mapped after the n video streams, each in its own
// adaptation set (one lang and one channel configuration per set, as
// dash.js and Shaka group them) numbered from firstSet, its language in
// BCP 47 form for the MPD's lang. It returns the maps and metadata, and
// the sets to add to -adaptation_sets.
func audioPackageArgs(in, n, firstSet int, tracks []AudioTrack) (args []string, sets string) {
	for k, a := range tracks {
		args = append(args, "-map", fmt.Sprintf("%d:a:%d", in, k))
		sets += fmt.Sprintf(" id=%d,streams=%d", firstSet+k, n+k)
		if a.Language != "" {
			args = append(args, fmt.Sprintf("-metadata:s:a:%d", k), "language="+LanguageBCP47(a.Language))
		}
	}
	return args, sets
}

// audioVariants are the master playlist's audio renditions: track k is
// representation n+k of the MPD (its codecs and bandwidth; when no
// representation has that id, the k-th audio one) and media_<n+k>.m3u8.
func audioVariants(reps []mpdRep, n int, tracks []AudioTrack) []AudioVariant {
	out := make([]AudioVariant, len(tracks))
	for k, a := range tracks {
		v := AudioVariant{Codecs: "mp4a.40.2", Bandwidth: DefaultAudioBitrate, URI: fmt.Sprintf("media_%d.m3u8", n+k),
			Name: a.Name, Language: LanguageBCP47(a.Language), Channels: a.Channels, Default: a.Default}
		if a.Bitrate > 0 {
			v.Bandwidth = int64(a.Bitrate)
		}
		var rep *mpdRep
		for i := range reps {
			if reps[i].ID == strconv.Itoa(n+k) {
				rep = &reps[i]
			}
		}
		if rep == nil && k < len(reps) {
			rep = &reps[k]
		}
		if rep != nil {
			if codecsRe.MatchString(rep.Codecs) {
				v.Codecs = rep.Codecs
			}
			if rep.Bandwidth > 0 {
				v.Bandwidth = rep.Bandwidth
			}
		}
		out[k] = v
	}
	return out
}
