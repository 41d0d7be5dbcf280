package transcoder

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// AudioChoice is Options.Audio: which of the source's audio streams a job
// keeps. The zero value keeps them all (up to MaxAudioTracks). In JSON it
// is "all", "first" or a list of ordinals among the audio streams ([1] is
// the second audio stream, whatever its index among all streams).
type AudioChoice struct {
	First   bool  // only the first audio stream
	Streams []int // these ordinals, in this order; nil = all (unless First)
}

// IsZero reports the default choice ("all"), which JSON omits.
func (c AudioChoice) IsZero() bool { return !c.First && c.Streams == nil }

// MarshalJSON writes "all", "first" or the list.
func (c AudioChoice) MarshalJSON() ([]byte, error) {
	switch {
	case c.First:
		return []byte(`"first"`), nil
	case c.Streams != nil:
		return json.Marshal(c.Streams)
	}
	return []byte(`"all"`), nil
}

// UnmarshalJSON reads "all", "first" or a list of ordinals.
func (c *AudioChoice) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*c = AudioChoice{}
	if string(b) == "null" {
		return nil // the default, as a missing field
	}
	if len(b) > 0 && b[0] == '[' {
		var s []int
		if err := json.Unmarshal(b, &s); err != nil {
			return errors.New(`audio: want "all", "first" or a list of audio stream ordinals such as [0, 2]`)
		}
		c.Streams = s
		if c.Streams == nil {
			c.Streams = []int{}
		}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`audio: want "all", "first" or a list of audio stream ordinals such as [0, 2]`)
	}
	switch s {
	case "all":
	case "first":
		c.First = true
	default:
		return fmt.Errorf(`audio: unknown choice %q (want "all", "first" or a list of audio stream ordinals such as [0, 2])`, s)
	}
	return nil
}

// Validate checks what can be checked without the source.
func (c AudioChoice) Validate() error {
	if c.First && c.Streams != nil {
		return errors.New("options: audio is either \"first\" or a list, not both")
	}
	if c.Streams == nil {
		return nil
	}
	if len(c.Streams) == 0 {
		return errors.New(`options: audio [] selects no audio stream; leave "audio" out (all) or use "first"`)
	}
	if len(c.Streams) > MaxAudioTracks {
		return fmt.Errorf("options: audio lists %d streams; at most %d are kept", len(c.Streams), MaxAudioTracks)
	}
	seen := map[int]bool{}
	for _, i := range c.Streams {
		switch {
		case i < 0 || i >= MaxAudioTracks:
			return fmt.Errorf("options: audio stream %d: ordinals count the audio streams from 0 and at most the first %d are kept", i, MaxAudioTracks)
		case seen[i]:
			return fmt.Errorf("options: audio stream %d is listed twice", i)
		}
		seen[i] = true
	}
	return nil
}

// Tracks is every audio stream the probe kept: AudioTracks, or for a
// probe from before that list, Audio alone.
func (p *Probe) Tracks() []AudioStream {
	if len(p.AudioTracks) > 0 {
		return p.AudioTracks
	}
	if p.Audio != nil {
		return []AudioStream{*p.Audio}
	}
	return nil
}

// SelectAudio returns the probe with only the audio streams c chooses:
// AudioTracks in the chosen order, Audio the first of them. An ordinal the
// source does not have is an error that names what it has.
func (p Probe) SelectAudio(c AudioChoice) (Probe, error) {
	if err := c.Validate(); err != nil {
		return p, err
	}
	all := p.Tracks()
	var out []AudioStream
	switch {
	case len(all) == 0 && c.Streams != nil:
		return p, fmt.Errorf("options: audio %v: the source has no audio stream", c.Streams)
	case len(all) == 0:
		return p, nil
	case c.First:
		out = all[:1]
	case c.Streams != nil:
		for _, i := range c.Streams {
			if i >= len(all) {
				return p, fmt.Errorf("options: audio stream %d does not exist: the source has %d audio stream%s (0 to %d)",
					i, len(all), plural(len(all)), len(all)-1)
			}
			out = append(out, all[i])
		}
	default:
		out = all
	}
	p.AudioTracks = append([]AudioStream(nil), out...)
	first := p.AudioTracks[0]
	p.Audio = &first
	return p, nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// addAudio keeps one more audio stream found by the probe, up to
// MaxAudioTracks. A stream ffprobe names no codec for (no decoder) is
// ignored unless it is the first: every kept stream is decoded, and one
// that cannot be would fail the job's audio.
func (p *Probe) addAudio(a AudioStream) {
	if len(p.AudioTracks) >= MaxAudioTracks || a.Codec == "" && len(p.AudioTracks) > 0 {
		p.AudioIgnored++
		return
	}
	if a.Duration <= 0 {
		a.Duration = p.Duration
	}
	a.Language = cleanLanguage(a.Language)
	a.Title = cleanTitle(a.Title)
	a.ChannelLayout = cleanLayout(a.ChannelLayout)
	p.AudioTracks = append(p.AudioTracks, a)
	if p.Audio == nil {
		first := a
		p.Audio = &first
	}
}

// audioIndicesOK reports whether every kept audio stream has its own
// index, not negative and not the video's (ffprobe's always do; a later
// ffmpeg maps the streams by index).
func audioIndicesOK(p *Probe, video int) bool {
	seen := map[int]bool{video: true}
	for _, a := range p.AudioTracks {
		if a.Index < 0 || seen[a.Index] {
			return false
		}
		seen[a.Index] = true
	}
	return true
}

// cleanLayout keeps a channel layout name such as "5.1(side)" and "" for
// anything that is not a short plain name.
func cleanLayout(s string) string {
	if len(s) > 32 || strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune(".()_+-", r))
	}) {
		return ""
	}
	return s
}

// cleanLanguage keeps a language tag made of 2 or 3 letters, lower case,
// and "" for anything else (including "und").
func cleanLanguage(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) < 2 || len(s) > 3 || s == "und" || strings.ContainsFunc(s, func(r rune) bool { return r < 'a' || r > 'z' }) {
		return ""
	}
	return s
}

// maxTitleRunes bounds a track title taken from a user's file.
const maxTitleRunes = 64

// cleanTitle keeps a track title (an audio or subtitle stream's tag, an
// uploaded subtitle's name) fit for a manifest: printable, one line, no
// quote or markup character, at most maxTitleRunes.
func cleanTitle(s string) string {
	if !utf8.ValidString(s) {
		return ""
	}
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return !unicode.IsPrint(r) || unicode.IsSpace(r) || r == '"' || r == '<' || r == '>' || r == '&'
	}), " ")
	if r := []rune(s); len(r) > maxTitleRunes {
		s = string(r[:maxTitleRunes])
	}
	return strings.TrimSpace(s)
}

// languages maps ISO 639-2 codes (bibliographic and terminology) and ISO
// 639-1 codes of common languages to the 639-1 code (what BCP 47 wants for
// HLS and DASH), the 639-2/T code (what MP4 stores) and an English name.
var languages = func() map[string][3]string {
	m := map[string][3]string{}
	for _, l := range []struct{ two, t, b, name string }{
		{"en", "eng", "", "English"}, {"fr", "fra", "fre", "French"}, {"de", "deu", "ger", "German"},
		{"es", "spa", "", "Spanish"}, {"it", "ita", "", "Italian"}, {"pt", "por", "", "Portuguese"},
		{"ru", "rus", "", "Russian"}, {"ja", "jpn", "", "Japanese"}, {"zh", "zho", "chi", "Chinese"},
		{"ko", "kor", "", "Korean"}, {"nl", "nld", "dut", "Dutch"}, {"sv", "swe", "", "Swedish"},
		{"pl", "pol", "", "Polish"}, {"ar", "ara", "", "Arabic"}, {"hi", "hin", "", "Hindi"},
		{"tr", "tur", "", "Turkish"}, {"da", "dan", "", "Danish"}, {"fi", "fin", "", "Finnish"},
		{"no", "nor", "", "Norwegian"}, {"cs", "ces", "cze", "Czech"}, {"el", "ell", "gre", "Greek"},
		{"he", "heb", "", "Hebrew"}, {"hu", "hun", "", "Hungarian"}, {"uk", "ukr", "", "Ukrainian"},
		{"ro", "ron", "rum", "Romanian"}, {"th", "tha", "", "Thai"}, {"vi", "vie", "", "Vietnamese"},
		{"id", "ind", "", "Indonesian"}, {"ca", "cat", "", "Catalan"}, {"fa", "fas", "per", "Persian"},
		{"nb", "nob", "", "Norwegian Bokmål"}, {"ms", "msa", "may", "Malay"}, {"bg", "bul", "", "Bulgarian"},
		{"hr", "hrv", "", "Croatian"}, {"sr", "srp", "", "Serbian"}, {"sk", "slk", "slo", "Slovak"},
		{"sl", "slv", "", "Slovenian"}, {"is", "isl", "ice", "Icelandic"},
	} {
		v := [3]string{l.two, l.t, l.name}
		m[l.two], m[l.t] = v, v
		if l.b != "" {
			m[l.b] = v
		}
	}
	return m
}()

// LanguageBCP47 is a cleaned language tag as HLS's LANGUAGE and DASH's
// lang want it: the two-letter code when there is one, else the tag as is
// ("" stays "").
func LanguageBCP47(lang string) string {
	if l, ok := languages[lang]; ok {
		return l[0]
	}
	return lang
}

// languageMP4 is the three-letter code an MP4 track stores ("und" when
// unknown).
func languageMP4(lang string) string {
	if l, ok := languages[lang]; ok {
		return l[1]
	}
	if len(lang) == 3 {
		return lang
	}
	return "und"
}

// trackName is what a player lists for audio stream k: its title, else
// its language's name, else "Audio k+1".
func trackName(a AudioStream, k int) string {
	if a.Title != "" {
		return a.Title
	}
	if l, ok := languages[a.Language]; ok {
		return l[2]
	}
	if a.Language != "" {
		return strings.ToUpper(a.Language)
	}
	return "Audio " + strconv.Itoa(k+1)
}

// AudioTrack is one track of a job's encoded audio (the one .m4a), in the
// order it stores them: what the manifests list.
type AudioTrack struct {
	Ordinal  int    // position among the tracks of the .m4a
	Source   int    // index of the source stream it comes from
	Name     string // unique among the tracks: "English", "English 5.1"
	Language string // cleaned tag ("" = unknown)
	Channels int    // 1, 2 or 6
	Bitrate  int    // AAC bits/s
	Default  bool   // only the first track
}

// PlanAudioTracks lays out the tracks EncodeAudio makes of the chosen
// source streams: the default stream first (the source's default
// disposition, else the first chosen), each stream as stereo (mono stays
// mono) followed, for a surround stream, by its 5.1 rendition.
func PlanAudioTracks(streams []AudioStream) []AudioTrack {
	var out []AudioTrack
	used := map[string]bool{}
	add := func(a AudioStream, name string, channels, rate int) {
		base := name
		for n := 2; used[name]; n++ {
			name = fmt.Sprintf("%s (%d)", base, n)
		}
		used[name] = true
		out = append(out, AudioTrack{Ordinal: len(out), Source: a.Index, Name: name, Language: a.Language,
			Channels: channels, Bitrate: rate, Default: len(out) == 0})
	}
	for k, a := range orderDefaultFirst(streams) {
		name := trackName(a, k)
		if a.Channels == 1 {
			add(a, name, 1, DefaultAudioBitrate)
			continue
		}
		add(a, name, 2, DefaultAudioBitrate)
		if a.Channels >= 6 {
			add(a, name+" 5.1", 6, SurroundAudioBitrate)
		}
	}
	return out
}

// orderDefaultFirst moves the first stream with the default disposition
// to the front; the others keep their order.
func orderDefaultFirst(streams []AudioStream) []AudioStream {
	for i, a := range streams {
		if a.Default {
			out := append([]AudioStream{a}, streams[:i]...)
			return append(out, streams[i+1:]...)
		}
	}
	return streams
}
