package cluster

import (
	"maps"
	"slices"
	"strconv"
	"strings"
)

// A long history holds the same few values in every record: node names,
// the ladder and the MP4 paths of the usual options, container and codec
// names. The state shares one copy of each (records are immutable, so
// sharing is safe) instead of keeping a hundred thousand. The tables are
// bounded: past maxInterned distinct values of a kind, new ones are kept
// as they come.
const maxInterned = 4096

type interner struct {
	strs  map[string]string
	rends map[string][]Rendition
	mp4s  map[string]map[string]string
	lists map[string][]string
}

func (in *interner) str(s string) string {
	if s == "" {
		return s
	}
	if v, ok := in.strs[s]; ok {
		return v
	}
	if in.strs == nil {
		in.strs = map[string]string{}
	}
	if len(in.strs) < maxInterned {
		in.strs[s] = s
	}
	return s
}

// name interns a node name.
func (s *State) name(n string) string { return s.in.str(n) }

// intern makes j share the values other records hold.
func (s *State) intern(j *Job) {
	in := &s.in
	j.Origin = in.str(j.Origin)
	j.Submitter = in.str(j.Submitter)
	j.Source.Format = in.str(j.Source.Format)
	if v := j.Source.Video; v != nil && (in.str(v.Codec) != v.Codec || in.str(v.PixFmt) != v.PixFmt) {
		nv := *v
		nv.Codec, nv.PixFmt = in.str(v.Codec), in.str(v.PixFmt)
		j.Source.Video = &nv
	}
	if a := j.Source.Audio; a != nil && in.str(a.Codec) != a.Codec {
		na := *a
		na.Codec = in.str(a.Codec)
		j.Source.Audio = &na
	}
	j.Options.Codec, j.Options.Preset = in.str(j.Options.Codec), in.str(j.Options.Preset)
	j.Options.Renditions = in.list(j.Options.Renditions)
	j.Renditions = in.ladder(j.Renditions)
	j.MP4 = in.mp4(j.MP4)
}

func (in *interner) list(l []string) []string {
	if len(l) == 0 {
		return l
	}
	key := strings.Join(l, "\x00")
	if v, ok := in.lists[key]; ok {
		return v
	}
	if in.lists == nil {
		in.lists = map[string][]string{}
	}
	if len(in.lists) < maxInterned {
		in.lists[key] = slices.Clone(l)
		return in.lists[key]
	}
	return l
}

func (in *interner) ladder(rs []Rendition) []Rendition {
	if len(rs) == 0 {
		return rs
	}
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(r.Name)
		b.WriteByte(0)
		b.WriteString(strconv.Itoa(r.Width))
		b.WriteByte('x')
		b.WriteString(strconv.Itoa(r.Height))
		b.WriteByte('@')
		b.WriteString(strconv.FormatInt(r.Bitrate, 10))
		b.WriteByte(0)
		b.WriteString(r.Codec)
		b.WriteByte(1)
	}
	key := b.String()
	if v, ok := in.rends[key]; ok {
		return v
	}
	if in.rends == nil {
		in.rends = map[string][]Rendition{}
	}
	if len(in.rends) < maxInterned {
		v := slices.Clone(rs)
		for i := range v {
			v[i].Name, v[i].Codec = in.str(v[i].Name), in.str(v[i].Codec)
		}
		in.rends[key] = v
		return v
	}
	return rs
}

func (in *interner) mp4(m map[string]string) map[string]string {
	if len(m) == 0 {
		return m
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(m[k])
		b.WriteByte(1)
	}
	key := b.String()
	if v, ok := in.mp4s[key]; ok {
		return v
	}
	if in.mp4s == nil {
		in.mp4s = map[string]map[string]string{}
	}
	if len(in.mp4s) < maxInterned {
		in.mp4s[key] = maps.Clone(m)
		return in.mp4s[key]
	}
	return m
}
