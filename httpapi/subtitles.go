package httpapi

import (
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"path"
	"strings"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/transcoder"
)

// Sidecar is a subtitle file uploaded with a video (multipart field
// `subtitles`, before the file): checked and re-emitted as WebVTT here, so
// the backend stores only text this package wrote.
type Sidecar struct {
	Name     string // display name ("" = the language)
	Language string // BCP 47; "" unknown
	VTT      []byte
}

// sidecarForm collects the multipart subtitle fields: each `subtitles`
// part is a .srt or .vtt file; a `subtitles_lang` or `subtitles_name`
// field sets the language or name of the file sent just before it (the
// language is otherwise read from the file name: film.en.srt,
// film.fr-CA.vtt).
type sidecarForm struct {
	files []Sidecar
}

// add reads one part of the sidecar fields; a bad file or field wraps
// cluster.ErrInvalid with a reason fit for the client.
func (f *sidecarForm) add(part *multipart.Part) error {
	switch part.FormName() {
	case "subtitles":
		if len(f.files) >= transcoder.MaxSubtitleTracks {
			return fmt.Errorf("subtitles: at most %d files per upload: %w", transcoder.MaxSubtitleTracks, cluster.ErrInvalid)
		}
		name := cleanName(part.FileName())
		ext := strings.ToLower(path.Ext(name))
		if ext != ".srt" && ext != ".vtt" {
			return fmt.Errorf("subtitles: %q is not a .srt or .vtt file: %w", name, cluster.ErrInvalid)
		}
		b, err := io.ReadAll(io.LimitReader(part, transcoder.MaxSubtitleBytes+1))
		if err != nil {
			return fmt.Errorf("subtitles: reading %q: %v: %w", name, err, cluster.ErrInvalid)
		}
		cues, err := transcoder.ParseSubtitles(b)
		if err != nil {
			reason := err.Error()
			var me *transcoder.MediaError
			if errors.As(err, &me) {
				reason = me.Reason
			}
			return fmt.Errorf("subtitles: %q: %s: %w", name, reason, cluster.ErrInvalid)
		}
		f.files = append(f.files, Sidecar{Language: languageOfFileName(name), VTT: transcoder.WebVTT(cues)})
	case "subtitles_lang", "subtitles_name":
		if len(f.files) == 0 {
			return fmt.Errorf("%s must follow the subtitles file it describes: %w", part.FormName(), cluster.ErrInvalid)
		}
		b, err := io.ReadAll(io.LimitReader(part, 257))
		if err != nil || len(b) > 256 {
			return fmt.Errorf("%s: too long or unreadable: %w", part.FormName(), cluster.ErrInvalid)
		}
		last := &f.files[len(f.files)-1]
		v := strings.TrimSpace(string(b))
		if part.FormName() == "subtitles_name" {
			last.Name = cleanName(v)
			break
		}
		lang := transcoder.NormalizeLanguage(v)
		if lang == "" && v != "" && v != "und" {
			return fmt.Errorf("subtitles_lang: %q is not a language tag (like en or fr-CA): %w", v, cluster.ErrInvalid)
		}
		last.Language = lang
	}
	return nil
}

// languageOfFileName reads the language of "film.en.srt" or
// "film.fr-CA.vtt" ("" when the name has none).
func languageOfFileName(name string) string {
	base := strings.TrimSuffix(name, path.Ext(name))
	i := strings.LastIndexByte(base, '.')
	if i < 0 {
		return ""
	}
	tag := base[i+1:]
	if len(tag) > 3 && !strings.ContainsAny(tag, "-_") { // "film.final.srt": not a language
		return ""
	}
	return transcoder.NormalizeLanguage(tag)
}

// SubtitleView is one subtitle track of a done job: its sidecar WebVTT.
type SubtitleView struct {
	URL      string `json:"url"`
	Language string `json:"language,omitempty"`
	Name     string `json:"name,omitempty"`
	Default  bool   `json:"default,omitempty"`
	Forced   bool   `json:"forced,omitempty"`
}

func subtitleViews(j cluster.Job) []SubtitleView {
	var out []SubtitleView
	for n, s := range j.Subtitles {
		out = append(out, SubtitleView{URL: FileURL(j.ID, j.SubtitleFile(n)), Language: s.Language, Name: s.Name,
			Default: s.Default, Forced: s.Forced})
	}
	return out
}
