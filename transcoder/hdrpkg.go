package transcoder

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// HLSVideoRange is HLS's VIDEO-RANGE for a rendition's Range.
func HLSVideoRange(rng string) string {
	switch rng {
	case RangePQ:
		return "PQ"
	case RangeHLG:
		return "HLG"
	}
	return "SDR"
}

// videoAdaptationSets is the DASH muxer's -adaptation_sets value for the
// video (output streams 0..len(rs)-1) and how many sets it names: one set
// for a ladder of one codec and range, else one per codec and range in
// order of appearance (a "both" job: SDR h264, then HDR hevc), since a
// player switches only within a set and an SDR screen must not be handed
// an HDR rung.
func videoAdaptationSets(rs []Rendition) (string, int) {
	var keys []string
	groups := map[string][]string{}
	for i, r := range rs {
		k := r.Codec + "/" + r.Range
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], strconv.Itoa(i))
	}
	if len(keys) <= 1 {
		return "id=0,streams=v", 1
	}
	sets := make([]string, len(keys))
	for i, k := range keys {
		sets[i] = fmt.Sprintf("id=%d,streams=%s", i, strings.Join(groups[k], ","))
	}
	return strings.Join(sets, " "), len(keys)
}

// cicp are the ISO/IEC 23091-2 code points of a range: colour primaries,
// transfer characteristics, matrix coefficients.
func cicp(rng string) [3]int {
	switch rng {
	case RangePQ:
		return [3]int{9, 16, 9}
	case RangeHLG:
		return [3]int{9, 18, 9}
	}
	return [3]int{1, 1, 1}
}

var mpdSetRe = regexp.MustCompile(`(?s)(<AdaptationSet\b[^>]*>)(.*?</AdaptationSet>)`)

// fixRanges states each video rendition's dynamic range in the MPD ffmpeg
// wrote: the CICP SupplementalProperty elements (ColourPrimaries,
// TransferCharacteristics, MatrixCoefficients) on every video
// AdaptationSet of a ladder that has an HDR rung. (The HLS master states
// VIDEO-RANGE from the start: buildMaster.)
func fixRanges(outDir string, rs []Rendition) error {
	hdr := false
	for _, r := range rs {
		hdr = hdr || r.Range != ""
	}
	if !hdr {
		return nil
	}
	path := filepath.Join(outDir, dashManifest)
	mpd, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read mpd: %w", err)
	}
	fixed := mpdSetRe.ReplaceAllFunc(mpd, func(set []byte) []byte {
		m := mpdSetRe.FindSubmatch(set)
		rep := mpdRepRe.Find(m[2])
		if rep == nil || !bytes.Contains(rep, []byte(`mimeType="video/`)) || bytes.Contains(m[2], []byte("cicp:")) {
			return set
		}
		id := mpdRepIDRe.FindSubmatch(rep)
		if id == nil {
			return set
		}
		i, err := strconv.Atoi(string(id[1]))
		if err != nil || i >= len(rs) {
			return set
		}
		c := cicp(rs[i].Range)
		var b bytes.Buffer
		b.Write(m[1])
		for k, name := range []string{"ColourPrimaries", "TransferCharacteristics", "MatrixCoefficients"} {
			fmt.Fprintf(&b, "\n\t\t\t<SupplementalProperty schemeIdUri=\"urn:mpeg:mpegB:cicp:%s\" value=\"%d\"/>", name, c[k])
		}
		b.Write(m[2])
		return b.Bytes()
	})
	if bytes.Equal(fixed, mpd) {
		return nil
	}
	return writeFileAtomic(path, fixed)
}
